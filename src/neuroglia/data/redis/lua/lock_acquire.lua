-- Acquire a lock with SET NX PX, first come first served.
--
-- KEYS[1] the lock key (holds the owner's token while the lock is held);
--         its companions are named in lock_queue.lua
-- ARGV[1] token of this acquisition
-- ARGV[2] lease in milliseconds
-- ARGV[3] (optional) waiter id of the calling process: given, the process
--         keeps (or takes) its place in the queue when the lock is busy
--
-- Returns the fencing token (>= 1) when acquired; otherwise minus the lock's
-- remaining lease in ms (0 when the lock is free but other waiters are ahead).
local token, lease, id = ARGV[1], ARGV[2], ARGV[3]

local function busy()
  local ttl = redis.call('PTTL', LOCK)
  if ttl > 0 then
    return -ttl
  end
  return 0
end

local now = nil
if redis.call('EXISTS', WAITERS) == 1 then
  now = now_ms()
  local head = queue_head(now)
  if head and head ~= id then
    if id then
      enqueue(id, now)
    end
    return busy()
  end
end

if redis.call('SET', LOCK, token, 'NX', 'PX', lease) then
  local fence = redis.call('INCR', FENCING)
  if now and id then
    dequeue(id)
    redis.call('DEL', wake_key(id))  -- a wake-up it no longer needs
  end
  return fence
end

if id then
  enqueue(id, now or now_ms())
end
return busy()
