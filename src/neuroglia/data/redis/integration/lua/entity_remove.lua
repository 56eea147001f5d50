-- Remove an entity and its index entry together.
--
-- KEYS[1] the entity's key
-- KEYS[2] the entity type's index
-- ARGV[1] the entity's id as written in its key
--
-- Returns 1 when the entity was stored (and is removed), 0 when it was not.
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
