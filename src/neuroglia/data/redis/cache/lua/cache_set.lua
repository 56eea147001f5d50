-- Write one cache entry with its tags, release the writer's lease and wake the
-- processes waiting for the value.
--
-- KEYS[1] the entry: a hash with fields v (value), m (metadata), t (tags)
-- KEYS[2] the entry's lease (holds the token of the process computing it)
-- KEYS[3] the entry's waiters (a set of waiter ids)
-- ARGV[1] v, the encoded value
-- ARGV[2] m, the metadata
-- ARGV[3] the entry's time to live in Redis, in milliseconds
-- ARGV[4] the prefix of tag keys (a tag's key is the prefix and the tag)
-- ARGV[5] the prefix of the waiters' wake-up lists
-- ARGV[6] the writer's lease token ("" when it holds none)
-- ARGV[7..] the entry's tags, none or more
--
-- A tag's key is a sorted set: member = entry key, score = the server time
-- (ms) at which that entry expires. The entry is removed from the tag sets of
-- its previous version that the new one does not carry, so a later removal of
-- such a tag never deletes this newer entry. Members whose entry has expired
-- are trimmed whenever the tag is written, and the set itself expires with its
-- last entry: tag sets do not grow without bound.
local entry, lease, waiters = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[3])
local tag_prefix, wake_prefix, token = ARGV[4], ARGV[5], ARGV[6]

local carried = {}
for i = 7, #ARGV do
  carried[ARGV[i]] = true
end

local previous = redis.call('HGET', entry, 't')
if previous then
  for tag in string.gmatch(previous, '[^\31]+') do
    if not carried[tag] then
      redis.call('ZREM', tag_prefix .. tag, entry)
    end
  end
end

redis.call('HSET', entry, 'v', ARGV[1], 'm', ARGV[2], 't', table.concat(ARGV, '\31', 7))
redis.call('PEXPIRE', entry, ttl)

if #ARGV >= 7 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires = string.format('%d', now + ttl)
  for i = 7, #ARGV do
    local key = tag_prefix .. ARGV[i]
    redis.call('ZADD', key, expires, entry)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', now))
    if redis.call('PTTL', key) < ttl then
      redis.call('PEXPIRE', key, ttl)
    end
  end
end

if token ~= '' and redis.call('GET', lease) == token then
  redis.call('DEL', lease)
end
wake(waiters, wake_prefix)
return 1
