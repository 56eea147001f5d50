-- Acquire a lock with SET NX PX, first come first served.
--
-- KEYS[1] the lock key (holds the owner's token while the lock is held)
-- KEYS[2] the fencing counter (INCR on every acquisition; never expires)
-- KEYS[3] the waiters queue      KEYS[4] the waiters' heartbeats
-- ARGV[1] token of this acquisition
-- ARGV[2] lease in milliseconds
-- ARGV[3] waiter id of the calling process ('' when it does not queue)
-- ARGV[4] '1' to join the queue when the lock is busy
-- ARGV[5] heartbeat grace in milliseconds
--
-- Returns {1, fencing token} when acquired; {0, PTTL of the lock} when not
-- (the PTTL is -2 when the lock is free but other waiters are ahead).
local lock, fencing, waiters, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, lease, id, join, grace = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', tonumber(ARGV[5])

local now = nil
if redis.call('EXISTS', waiters) == 1 then
  now = now_ms()
  local head = queue_head(waiters, alive, now)
  if head and head ~= id then
    if join and id ~= '' then
      enqueue(waiters, alive, id, now, grace)
    end
    return {0, redis.call('PTTL', lock)}
  end
end

if redis.call('SET', lock, token, 'NX', 'PX', lease) then
  local fence = redis.call('INCR', fencing)
  if now and id ~= '' then
    dequeue(waiters, alive, id)
    redis.call('DEL', lock .. ':wake:' .. id)  -- a wake-up it no longer needs
  end
  return {1, fence}
end

if join and id ~= '' then
  enqueue(waiters, alive, id, now or now_ms(), grace)
end
return {0, redis.call('PTTL', lock)}
