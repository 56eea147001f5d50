-- Prepended to every entity script: the entity type's index, kept in step
-- with the writes by the same script that writes.
--
-- The index is a sorted set with one member per stored entity (its id as
-- written in the entity's key), scored with the time the entity expires, in
-- milliseconds since the epoch by the server's clock, or +inf when it does not
-- expire. Every write drops the members whose time has passed, so the index
-- holds the live entities plus at most those that expired since the last write.

-- The server's time in milliseconds (the clock that expires the keys).
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Give the entity at `key` its time to live (`ttl` ms; 0: none) and index it
-- as `member` of `index_key`.
local function index(index_key, key, member, ttl)
  local now = server_ms()
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZADD', index_key, now + ttl, member)
  else
    redis.call('PERSIST', key)
    redis.call('ZADD', index_key, '+inf', member)
  end
  redis.call('ZREMRANGEBYSCORE', index_key, '-inf', '(' .. now)
end

-- Whether an index score (as ZSCAN returns it) lies after `now`.
local function alive(score, now)
  if score == 'inf' or score == '+inf' then
    return true
  end
  return tonumber(score) > now
end
