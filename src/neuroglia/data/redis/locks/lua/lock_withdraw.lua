-- A waiting process leaves the queue, and an acquisition whose reply was lost
-- (the caller was cancelled) is undone.
--
-- KEYS[1] the lock key (companions named in lock_queue.lua)
-- ARGV[1] token that may hold the lock ('' for none)
-- ARGV[2] waiter id leaving the queue ('' for none)
--
-- Returns 1 when the lock held by ARGV[1] was deleted, 0 otherwise.
local token, id = ARGV[1], ARGV[2]
local q = queue()

if id ~= '' then
  q.dequeue(id)
  redis.call('DEL', q.wake_key(id))
end
local deleted = 0
if token ~= '' and redis.call('GET', LOCK) == token then
  redis.call('DEL', LOCK)
  deleted = 1
end
if redis.call('EXISTS', LOCK) == 0 and redis.call('EXISTS', WAITERS) == 1 then
  q.wake_head(q.now())
end
return deleted
