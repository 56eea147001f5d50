-- Acquire a lock with SET NX PX, first come first served.
--
-- KEYS as in lock_queue.lua (KEYS[1] the lock key)
-- ARGV[1] token of this acquisition
-- ARGV[2] lease in milliseconds
-- ARGV[3] (optional) waiter id of the calling process: given, the process
--         keeps (or takes) its place in the queue when the lock is busy
--
-- Returns the fencing token (>= 1) when acquired; otherwise minus the lock's
-- remaining lease in ms (0 when the lock is free but other waiters are ahead,
-- or when this acquisition was undone before it arrived).
local token, lease, id = ARGV[1], ARGV[2], ARGV[3]

local function busy()
  local ttl = redis.call('PTTL', LOCK)
  if ttl > 0 then
    return -ttl
  end
  return 0
end

if redis.call('EXISTS', WAITERS) == 0 then
  -- Nobody waits: the common case.
  if redis.call('SISMEMBER', UNDONE, token) == 1 then
    return 0  -- given up by its sender already: arriving late, it must not take the lock
  end
  if redis.call('SET', LOCK, token, 'NX', 'PX', lease) then
    return next_fence()
  end
  if id then
    local q = queue()
    q.enqueue(id, q.now())
  end
  return busy()
end

if redis.call('SISMEMBER', UNDONE, token) == 1 then
  return 0
end
local q = queue()
local now = q.now()
local head = q.head(now)
if head and head ~= id then
  if id then
    q.enqueue(id, now)
  end
  return busy()
end
if redis.call('SET', LOCK, token, 'NX', 'PX', lease) then
  local fence = next_fence()
  if id then
    q.dequeue(id)
    redis.call('DEL', q.wake_key(id))  -- a wake-up it no longer needs
  end
  return fence
end
if id then
  q.enqueue(id, now)
end
return busy()
