-- Helpers shared by the lock scripts; prepended to each of them when loaded.
--
-- A lock at key K keeps its waiters in a fair queue made of two sorted sets:
--   K:waiters  member = waiter id, score = arrival number (first come, first served)
--   K:alive    member = waiter id, score = server time (ms) after which the waiter
--              counts as gone (it refreshes this on every attempt)
-- Each waiting process blocks on its own list K:wake:<id>, which a release pushes
-- when that waiter reaches the head of the queue.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drop the waiters that stopped refreshing, then return the head's id (or nil).
local function queue_head(waiters, alive, now)
  local gone = redis.call('ZRANGEBYSCORE', alive, '-inf', string.format('%d', now))
  for _, id in ipairs(gone) do
    redis.call('ZREM', waiters, id)
    redis.call('ZREM', alive, id)
  end
  return redis.call('ZRANGE', waiters, 0, 0)[1]
end

-- Put a waiter at the tail of the queue (keeping its place if it is already
-- queued) and refresh its heartbeat.
local function enqueue(waiters, alive, id, now, grace)
  if not redis.call('ZSCORE', waiters, id) then
    local last = redis.call('ZRANGE', waiters, -1, -1, 'WITHSCORES')
    local seq = 1
    if last[2] then
      seq = tonumber(last[2]) + 1
    end
    redis.call('ZADD', waiters, seq, id)
  end
  redis.call('ZADD', alive, string.format('%d', now + grace), id)
  redis.call('PEXPIRE', waiters, grace * 2)
  redis.call('PEXPIRE', alive, grace * 2)
end

local function dequeue(waiters, alive, id)
  redis.call('ZREM', waiters, id)
  redis.call('ZREM', alive, id)
end

-- Tell the waiter at the head of the queue that the lock is free.
local function wake_head(lock, waiters, alive, now, grace)
  local head = queue_head(waiters, alive, now)
  if head then
    local wake = lock .. ':wake:' .. head
    redis.call('DEL', wake)
    redis.call('RPUSH', wake, '1')
    redis.call('PEXPIRE', wake, grace)
  end
end

