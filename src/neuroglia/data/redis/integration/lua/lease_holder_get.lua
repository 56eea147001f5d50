-- Who holds a lease.
--
-- KEYS[1] the lease's lock key
-- KEYS[2] the lease's holder record (see lease_holder_set.lua)
--
-- Returns the holder's identity; the lock's token when the lease is held by
-- an acquisition that recorded no identity (a plain DistributedLock on the
-- same key, or the instant between an acquisition and its record); nil when
-- nobody holds it.
local token = redis.call('GET', KEYS[1])
if not token then
  return nil
end
local record = redis.call('GET', KEYS[2])
local head = token .. '\n'
if record and string.sub(record, 1, #head) == head then
  return string.sub(record, #head + 1)
end
return token
