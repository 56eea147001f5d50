-- Write a value only if the writer's fencing token is not older than the
-- newest token that has written it: a holder that lost its lock (a pause, an
-- expired lease) cannot overwrite the work of the holder that came after it.
--
-- KEYS[1] the protected key
-- KEYS[2] its guard: the highest fencing token accepted so far (never expires;
--         in the locks' reserved namespace, in the protected key's hash slot)
-- KEYS[3] (optional) where earlier versions kept the guard (KEYS[1] .. ':fencing'):
--         read while KEYS[2] does not exist yet, never written
-- ARGV[1] fencing token of the writer
-- ARGV[2] the value
-- ARGV[3] expiration of the value in milliseconds ('0' for none)
--
-- Returns 1 when written, 0 when refused.
local token = tonumber(ARGV[1])
local seen = redis.call('GET', KEYS[2])
if not seen and KEYS[3] then
  local old = redis.pcall('GET', KEYS[3])
  if type(old) == 'string' and #old <= 15 and string.find(old, '^%d+$') then
    seen = old
  end
end
seen = tonumber(seen or '0')
if token == nil or seen == nil or token < seen then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
