-- Replace a stored entity, if it is stored and (for a versioned type) still at
-- the version the writer loaded: optimistic concurrency, checked and applied
-- in one step.
--
-- KEYS[1] the entity's key (see entity_add.lua)
-- KEYS[2] the entity type's index
-- ARGV[1] the entity's id as written in its key
-- ARGV[2] the new document
-- ARGV[3] the version the writer loaded ('': no check). A stored entity
--         without a version counts as version 0.
-- ARGV[4] the new version ('': the type is not versioned)
-- ARGV[5] time to live in milliseconds ('0': the entity does not expire)
--
-- Returns {1} when written; {0} when no entity has that id; {-1, version}
-- with the stored version when another writer got there first. Only {1}
-- writes anything.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
if ARGV[3] ~= '' then
  local stored = redis.call('HGET', KEYS[1], 'version') or '0'
  if tonumber(stored) ~= tonumber(ARGV[3]) then
    return {-1, stored}
  end
end
if ARGV[4] == '' then
  redis.call('HSET', KEYS[1], 'data', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', ARGV[4])
end
index(KEYS[2], KEYS[1], ARGV[1], tonumber(ARGV[5]))
return {1}
