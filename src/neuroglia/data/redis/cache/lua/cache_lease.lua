-- Take the lease to compute an entry, unless the entry is fresh or another
-- process holds the lease (then, optionally, register as waiting for it).
--
-- KEYS[1] the entry (hash: v, m, t)
-- KEYS[2] the entry's lease
-- KEYS[3] the entry's waiters (a set of waiter ids)
-- ARGV[1] the token of this attempt
-- ARGV[2] the lease, in milliseconds
-- ARGV[3] fresh-after: the entry counts as fresh if its logical expiration
--         (the first number of m) is later than this (ms of the callers' clock)
-- ARGV[4] the caller's waiter id, or "" not to wait (a background refresh)
-- ARGV[5] the prefix of the waiters' wake-up lists
--
-- Returns {1, v, m, t} when the entry is fresh; {2} when ARGV[1] now holds the
-- lease; {3, remaining lease in ms} when another process holds it.
local entry, lease, waiters = KEYS[1], KEYS[2], KEYS[3]

local m = redis.call('HGET', entry, 'm')
if m then
  local expires = tonumber(string.match(m, '^%-?%d+'))
  if expires and expires > tonumber(ARGV[3]) then
    local fields = redis.call('HMGET', entry, 'v', 't')
    return {1, fields[1], m, fields[2]}
  end
end

if redis.call('SET', lease, ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2}
end

local remaining = redis.call('PTTL', lease)
if remaining < 0 then
  remaining = 0
end
local id = ARGV[4]
if id ~= '' then
  redis.call('SADD', waiters, id)
  -- An element left from an earlier round would wake this one too early.
  redis.call('DEL', ARGV[5] .. id)
  local keep = remaining + 10000
  if redis.call('PTTL', waiters) < keep then
    redis.call('PEXPIRE', waiters, keep)
  end
end
return {3, remaining}
