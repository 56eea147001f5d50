-- Release a lock held by ARGV[1], or hand it straight to the next waiter of
-- the same process when no other process is queued ahead.
--
-- KEYS[1] the lock key   KEYS[2] the fencing counter
-- KEYS[3] the waiters queue   KEYS[4] the waiters' heartbeats
-- ARGV[1] token of the releasing acquisition
-- ARGV[2] token for the next local waiter ('' when nobody waits locally)
-- ARGV[3] the next waiter's lease in milliseconds
-- ARGV[4] waiter id of the calling process
-- ARGV[5] heartbeat grace in milliseconds
--
-- Returns {0, 0} when ARGV[1] does not hold the lock (it expired or was taken),
-- {1, 0} when released (the head of the queue is woken; with a next token the
-- calling process joins the queue), {2, fencing token} when handed to ARGV[2].
-- Running it again after a lost reply gives the same answer.
local lock, fencing, waiters, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, nxt, nlease, id, grace = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])

local current = redis.call('GET', lock)
if current ~= token then
  if nxt ~= '' and current == nxt then
    return {2, tonumber(redis.call('GET', fencing))}
  end
  return {0, 0}
end

local now = nil
local head = nil
if redis.call('EXISTS', waiters) == 1 then
  now = now_ms()
  head = queue_head(waiters, alive, now)
end

if nxt ~= '' and (not head or head == id) then
  redis.call('SET', lock, nxt, 'PX', nlease)
  local fence = redis.call('INCR', fencing)
  if head then
    dequeue(waiters, alive, id)
  end
  return {2, fence}
end

redis.call('DEL', lock)
if nxt ~= '' then
  now = now or now_ms()
  enqueue(waiters, alive, id, now, grace)
end
if head or nxt ~= '' then
  wake_head(lock, waiters, alive, now, grace)
end
return {1, 0}
