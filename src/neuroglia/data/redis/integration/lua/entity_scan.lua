-- One page of the entity type's index: the ids of the entities that have not
-- expired, without KEYS (ZSCAN's guarantees: every entity stored for the whole
-- iteration is returned at least once).
--
-- KEYS[1] the entity type's index
-- ARGV[1] the cursor ('0' to start)
-- ARGV[2] how many members to look at in this step (ZSCAN's COUNT)
--
-- Returns {next cursor ('0' when the iteration is complete), id, id, ...}.
local now = server_ms()
local page = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local out = {page[1]}
local items = page[2]
for i = 1, #items, 2 do
  if alive(items[i + 1], now) then
    out[#out + 1] = items[i]
  end
end
return out
