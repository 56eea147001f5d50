-- Set one field of an entity's hash, only if the entity exists, so that an
-- update of a missing entity never leaves a partial object behind.
--
-- KEYS[1] the entity's hash
-- ARGV[1] field name
-- ARGV[2] encoded value
--
-- Returns 1 when written, 0 when the hash does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
