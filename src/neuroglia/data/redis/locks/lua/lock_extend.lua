-- Extend the lease of a lock, only if ARGV[1] still holds it.
--
-- KEYS[1] the lock key
-- ARGV[1] token of the holder
-- ARGV[2] milliseconds
-- ARGV[3] 'add': add ARGV[2] to the remaining lease; 'set': make the remaining
--         lease exactly ARGV[2]; 'renew': make it at least ARGV[2] (never shorter)
--
-- Returns the new remaining lease in milliseconds, or 0 when ARGV[1] does not
-- hold the lock.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ms = tonumber(ARGV[2])
local mode = ARGV[3]
local ttl = redis.call('PTTL', KEYS[1])
if mode == 'add' then
  if ttl > 0 then
    ms = ms + ttl
  end
elseif mode == 'renew' then
  if ttl >= ms then
    return ttl
  end
end
redis.call('PEXPIRE', KEYS[1], ms)
return ms
