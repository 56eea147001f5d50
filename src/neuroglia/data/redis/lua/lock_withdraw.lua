-- A waiting process leaves the queue, and an acquisition whose reply was lost
-- (the caller was cancelled) is undone.
--
-- KEYS[1] the lock key   KEYS[2] the fencing counter (unused; keeps the key set uniform)
-- KEYS[3] the waiters queue   KEYS[4] the waiters' heartbeats
-- ARGV[1] token that may hold the lock ('' for none)
-- ARGV[2] waiter id leaving the queue ('' for none)
-- ARGV[3] heartbeat grace in milliseconds
--
-- Returns 1 when the lock held by ARGV[1] was deleted, 0 otherwise.
local lock, waiters, alive = KEYS[1], KEYS[3], KEYS[4]
local token, id, grace = ARGV[1], ARGV[2], tonumber(ARGV[3])

if id ~= '' then
  dequeue(waiters, alive, id)
  redis.call('DEL', lock .. ':wake:' .. id)
end
local deleted = 0
if token ~= '' and redis.call('GET', lock) == token then
  redis.call('DEL', lock)
  deleted = 1
end
if redis.call('EXISTS', lock) == 0 and redis.call('EXISTS', waiters) == 1 then
  wake_head(lock, waiters, alive, now_ms(), grace)
end
return deleted
