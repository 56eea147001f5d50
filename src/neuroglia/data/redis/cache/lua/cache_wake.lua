-- Prepended to the scripts that hand a computed value (or a released lease)
-- to the processes waiting for it.
--
-- A waiting process registers its waiter id in the entry's waiters set and
-- blocks (BLPOP) on its own wake-up list, <wake prefix><waiter id>. Waking
-- pushes one element to the list of every registered waiter and empties the
-- set. Registration and waking are scripts, so a waiter either registered
-- before the wake-up (and finds its element, even if it reaches BLPOP later)
-- or after it (and then sees the value, or a free lease).
local function wake(waiters, wake_prefix)
  local ids = redis.call('SMEMBERS', waiters)
  for _, id in ipairs(ids) do
    local list = wake_prefix .. id
    redis.call('RPUSH', list, '1')
    -- An element nobody pops (the waiter gave up) goes away on its own.
    redis.call('PEXPIRE', list, 10000)
  end
  if #ids > 0 then
    redis.call('DEL', waiters)
  end
end

