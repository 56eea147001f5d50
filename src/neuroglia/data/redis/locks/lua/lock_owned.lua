-- Whether ARGV[1] holds the lock.
--
-- KEYS[1] the lock key
-- ARGV[1] token of the holder
--
-- Returns the remaining lease in milliseconds (at least 1; -1 when the key has
-- no expiry) if ARGV[1] holds the lock, 0 otherwise.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == 0 then
  return 1
end
return ttl
