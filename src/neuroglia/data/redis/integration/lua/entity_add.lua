-- Store a new entity, unless an entity with the same id is stored.
--
-- KEYS[1] the entity's key: a hash of 'data' (the document in the envelope)
--         and 'version' (its version, for the versioned types)
-- KEYS[2] the entity type's index (see entity_index.lua)
-- ARGV[1] the entity's id as written in its key (its member in the index)
-- ARGV[2] the document
-- ARGV[3] the version to store ('' when the type is not versioned)
-- ARGV[4] time to live in milliseconds ('0': the entity does not expire)
--
-- Returns 1 when stored, 0 when an entity with that id is stored already
-- (and nothing was written).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'data', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', ARGV[3])
end
index(KEYS[2], KEYS[1], ARGV[1], tonumber(ARGV[4]))
return 1
