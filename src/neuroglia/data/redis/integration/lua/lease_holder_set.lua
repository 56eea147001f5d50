-- Record who holds a lease, only while the given lock token still holds it.
--
-- KEYS[1] the lease's lock key (holds the token of the current acquisition)
-- KEYS[2] the lease's holder record: "<token>\n<holder identity>". It never
--         expires (one small key per lease name, like the lock's fencing
--         counter); a record whose token no longer holds the lock is stale
--         and is ignored by lease_holder_get.lua.
-- ARGV[1] the token of the acquisition
-- ARGV[2] the holder's identity
--
-- Returns 1 when recorded, 0 when the token no longer holds the lock.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1] .. '\n' .. ARGV[2])
return 1
