-- Drop index entries whose entity is gone (deleted from outside the
-- repository, or expired and not yet dropped by a write). An entity stored
-- again meanwhile keeps its entry: each key is checked here, atomically.
--
-- KEYS[1] the entity type's index
-- KEYS[2..n] the keys of the entities found missing
-- ARGV[1..n-1] their ids as written in their keys (ARGV[i] for KEYS[i + 1])
--
-- Returns how many entries were dropped.
local dropped = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return dropped
