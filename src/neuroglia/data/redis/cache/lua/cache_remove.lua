-- Remove one cache entry and its memberships in its tags' sets.
--
-- KEYS[1] the entry (hash: v, m, t)
-- ARGV[1] the prefix of tag keys
--
-- Returns 1 when the entry existed, else 0.
local tags = redis.call('HGET', KEYS[1], 't')
if tags then
  for tag in string.gmatch(tags, '[^\31]+') do
    redis.call('ZREM', ARGV[1] .. tag, KEYS[1])
  end
end
return redis.call('DEL', KEYS[1])
