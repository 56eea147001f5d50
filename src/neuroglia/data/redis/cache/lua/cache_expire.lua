-- Expire one cache entry now, keeping it for fail-safe when it may still be
-- served stale; otherwise remove it (with its tag memberships).
--
-- KEYS[1] the entry (hash: v, m, t)
-- ARGV[1] now, in milliseconds of the callers' clock
-- ARGV[2] the prefix of tag keys
--
-- m is "expires,stale-until,rest..." (see entry.py). Returns 1 when the entry
-- was kept as stale, 2 when removed, 0 when it did not exist.
local m = redis.call('HGET', KEYS[1], 'm')
if not m then
  return 0
end
local now = tonumber(ARGV[1])
local expires, stale_until, rest = string.match(m, '^(%-?%d+),(%-?%d+),(.*)$')
-- Kept past its expiration (written with fail-safe: s > e) and not yet past that limit.
if expires and tonumber(stale_until) > tonumber(expires) and tonumber(stale_until) > now then
  if tonumber(expires) > now then
    redis.call('HSET', KEYS[1], 'm', ARGV[1] .. ',' .. stale_until .. ',' .. rest)
  end
  return 1
end
local tags = redis.call('HGET', KEYS[1], 't')
if tags then
  for tag in string.gmatch(tags, '[^\31]+') do
    redis.call('ZREM', ARGV[2] .. tag, KEYS[1])
  end
end
redis.call('DEL', KEYS[1])
return 2
