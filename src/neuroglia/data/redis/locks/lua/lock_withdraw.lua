-- Undo an acquisition whose answer was lost or late (its caller was
-- cancelled, timed out, or did not win a Redlock majority), or release one,
-- and let a waiting process leave the queue.
--
-- KEYS as in lock_queue.lua (KEYS[1] the lock key)
-- ARGV[1] token that may hold the lock ('' for none)
-- ARGV[2] waiter id leaving the queue ('' for none)
-- ARGV[3] (with a token) for how long, in ms, to refuse that token should its
--         acquisition arrive after this (a server paused with it unread)
--
-- Returns 1 when the lock held by ARGV[1] was deleted, 0 otherwise.
local token, id, ms = ARGV[1], ARGV[2], ARGV[3]
local q = queue()

if id ~= '' then
  q.dequeue(id)
  redis.call('DEL', q.wake_key(id))
end
local deleted = 0
if token ~= '' then
  if redis.call('GET', LOCK) == token then
    redis.call('DEL', LOCK)
    deleted = 1
  elseif ms and tonumber(ms) > 0 then
    undone(token, ms)
  end
end
if redis.call('EXISTS', LOCK) == 0 and redis.call('EXISTS', WAITERS) == 1 then
  q.wake_head(q.now())
end
return deleted
