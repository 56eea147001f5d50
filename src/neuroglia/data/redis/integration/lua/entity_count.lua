-- How many entities of the type are stored and have not expired.
--
-- KEYS[1] the entity type's index
--
-- Returns the count (members whose expiry time is still ahead).
return redis.call('ZCOUNT', KEYS[1], '(' .. server_ms(), '+inf')
