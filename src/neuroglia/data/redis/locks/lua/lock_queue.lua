-- Prepended to the lock scripts that use the wait queue: the keys and helpers.
--
-- The companion keys live in a reserved namespace, in the lock key's hash
-- slot, named after the lock by locks/keyspace.py; they are passed here so
-- that no script builds a key name from the lock's:
-- KEYS[1] the lock key: holds the holder's token for the lease
-- KEYS[2] the fencing counter: INCR on every acquisition, shared by the locks
--         of the key prefix (or of the hash slot, on a cluster); never expires
-- KEYS[3] the fair queue of waiting processes: member = waiter id,
--         score = arrival number
-- KEYS[4] the waiters' heartbeats: member = waiter id, score = server time
--         (ms) after which the waiter counts as gone (refreshed on every attempt)
-- KEYS[5] not a key but the prefix of the waiters' wake-up lists: a release
--         pushes KEYS[5] .. id when the waiter with that id reaches the head
-- KEYS[6] tokens of acquisitions undone before they were seen (a set): a late
--         acquisition carrying one of them is refused
-- KEYS[7] (optional) the per-lock counter of earlier versions (key .. ':fencing'):
--         read, never written, so that a token never goes below what it handed out
local LOCK, COUNTER, WAITERS, ALIVE, WAKE, UNDONE, LEGACY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

-- The next fencing token: above every token handed out for this lock.
local function next_fence()
  local fence = redis.call('INCR', COUNTER)
  if LEGACY then
    -- Only a counter as INCR leaves it counts (whatever else is there may be
    -- an application's key): digits, few enough to stay exact in a double.
    local old = redis.pcall('GET', LEGACY)
    if type(old) == 'string' and #old <= 15 and string.find(old, '^%d+$') then
      old = tonumber(old)
      if old >= fence then
        fence = old + 1
        redis.call('SET', COUNTER, string.format('%d', fence))
      end
    end
  end
  return fence
end

-- Remember that the acquisition with this token was undone, for `ms`
-- milliseconds: its command may still be on its way (a server paused with it
-- unread in a socket buffer runs it when it resumes, after this undo).
local function undone(token, ms)
  redis.call('SADD', UNDONE, token)
  local ttl = redis.call('PTTL', UNDONE)
  if ttl < tonumber(ms) then
    redis.call('PEXPIRE', UNDONE, ms)
  end
end

-- The queue's helpers, built only on the paths that need them: the common
-- case (nobody waits) is a few commands, cheaper than defining them all.
local function queue()
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
    return WAKE .. id
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

