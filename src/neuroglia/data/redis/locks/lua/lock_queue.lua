-- Prepended to the lock scripts that use the wait queue.
--
-- KEYS[1] is the lock key K. Its companion keys are named after it here, in
-- the script, rather than passed as further KEYS: every lock command then
-- carries one key, as short as a plain SET. (On Redis Cluster, give K a hash
-- tag, "{order:42}:lock", so that the companions share its slot.)
--   K:fencing  the fencing counter: INCR on every acquisition; never expires
--   K:waiters  the fair queue: member = waiter id, score = arrival number
--   K:alive    member = waiter id, score = server time (ms) after which the
--              waiter counts as gone (it refreshes this on every attempt)
--   K:wake:<id>  a list the waiter with that id blocks on; a release pushes
--              it when that waiter reaches the head of the queue
local LOCK = KEYS[1]
local WAITERS = LOCK .. ':waiters'

-- The queue's helpers, built only on the paths that need them: the common
-- case (nobody waits) is a few commands, cheaper than defining them all.
local function queue()
  local ALIVE = LOCK .. ':alive'
  -- A queued waiter that has not refreshed its place for this long (ms) is
  -- skipped, so a crashed waiter cannot block the queue for longer; waiters
  -- refresh at least every half second.
  local GRACE = 3000
  local q = {}

  function q.now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end

  function q.wake_key(id)
    return LOCK .. ':wake:' .. id
  end

  -- Drop the waiters that stopped refreshing, then return the head's id (or nil).
  function q.head(now)
    local gone = redis.call('ZRANGEBYSCORE', ALIVE, '-inf', string.format('%d', now))
    for _, id in ipairs(gone) do
      redis.call('ZREM', WAITERS, id)
      redis.call('ZREM', ALIVE, id)
    end
    return redis.call('ZRANGE', WAITERS, 0, 0)[1]
  end

  -- Put a waiter at the tail of the queue (keeping its place if it is already
  -- queued) and refresh its heartbeat.
  function q.enqueue(id, now)
    if not redis.call('ZSCORE', WAITERS, id) then
      local last = redis.call('ZRANGE', WAITERS, -1, -1, 'WITHSCORES')
      local seq = 1
      if last[2] then
        seq = tonumber(last[2]) + 1
      end
      redis.call('ZADD', WAITERS, seq, id)
    end
    redis.call('ZADD', ALIVE, string.format('%d', now + GRACE), id)
    redis.call('PEXPIRE', WAITERS, GRACE * 2)
    redis.call('PEXPIRE', ALIVE, GRACE * 2)
  end

  function q.dequeue(id)
    redis.call('ZREM', WAITERS, id)
    redis.call('ZREM', ALIVE, id)
  end

  -- Tell the waiter at the head of the queue that the lock is free.
  function q.wake_head(now)
    local head = q.head(now)
    if head then
      local wake = q.wake_key(head)
      redis.call('DEL', wake)
      redis.call('RPUSH', wake, '1')
      redis.call('PEXPIRE', wake, GRACE)
    end
  end

  return q
end

