-- Give up a lease without writing a value (the factory failed, was cancelled,
-- or asked not to cache), and wake the waiters so that one of them takes over
-- at once instead of waiting for the lease to run out.
--
-- KEYS[1] the entry's lease
-- KEYS[2] the entry's waiters (a set of waiter ids)
-- ARGV[1] the lease token being released
-- ARGV[2] the prefix of the waiters' wake-up lists
--
-- Returns 1 when the lease was ours, 0 when it had expired or been taken.
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
wake(KEYS[2], ARGV[2])
return released
