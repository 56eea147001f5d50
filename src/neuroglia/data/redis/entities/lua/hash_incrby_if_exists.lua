-- Add to an integer field of an entity's hash, only if the entity exists.
--
-- KEYS[1] the entity's hash
-- ARGV[1] field name
-- ARGV[2] amount (an integer)
--
-- Returns the new value, or nil when the hash does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
