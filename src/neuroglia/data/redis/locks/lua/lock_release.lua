-- Release a lock held by ARGV[1], or hand it straight to the next waiter of
-- the same process when no other process is queued ahead.
--
-- KEYS as in lock_queue.lua (KEYS[1] the lock key)
-- ARGV[1] token of the releasing acquisition
-- ARGV[2] (optional) token for the next waiter of the calling process
-- ARGV[3] (with ARGV[2]) the next waiter's lease in milliseconds
-- ARGV[4] (with ARGV[2]) waiter id of the calling process
--
-- Returns 0 when ARGV[1] does not hold the lock (it expired or was taken), -1
-- when released (the head of the queue is woken; with a next token the calling
-- process joins the queue), the new fencing token (>= 1) when handed to ARGV[2].
-- Running it again after a lost reply gives the same answer.
local token, nxt, nlease, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local current = redis.call('GET', LOCK)
if current ~= token then
  if nxt and current == nxt then
    -- Handed over already (this is a second run): the counter's value is at
    -- least the token handed out then, and above every earlier token of this
    -- lock; nobody else took the lock since, so none is above it yet.
    return tonumber(redis.call('GET', COUNTER))
  end
  return 0
end

if redis.call('EXISTS', WAITERS) == 0 then
  -- Nobody else waits: the common case.
  if nxt then
    redis.call('SET', LOCK, nxt, 'PX', nlease)
    return next_fence()
  end
  redis.call('DEL', LOCK)
  return -1
end

local q = queue()
local now = q.now()
local head = q.head(now)
if nxt and (not head or head == id) then
  redis.call('SET', LOCK, nxt, 'PX', nlease)
  local fence = next_fence()
  if head then
    q.dequeue(id)
  end
  return fence
end

redis.call('DEL', LOCK)
if nxt then
  q.enqueue(id, now)
end
if head then
  q.wake_head(now)
end
return -1
