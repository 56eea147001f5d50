-- Remove the entries of one tag, a batch at a time.
--
-- KEYS[1] the tag's set (member = entry key, score = its expiry, server ms)
-- KEYS[2] the tag's removal set: what removals of this tag still have to delete
-- ARGV[1] the tag
-- ARGV[2] how many members to handle in this call
-- ARGV[3] the prefix of tag keys
-- ARGV[4] "1" on a removal's first call: move the tag's set into the removal
--         set (the entries tagged until now), "0" on the next calls
--
-- The members moved on the first call are every entry set with the tag before
-- the removal began; an entry tagged later goes to a new tag set and is not
-- removed. Concurrent removals of one tag drain the same removal set, and each
-- batch pops and deletes in one script, so when a caller sees the removal set
-- empty, every member moved into it has been handled. An entry is deleted only
-- if it still carries the tag (a member left by an overwritten version is
-- skipped); a deleted entry also leaves its other tags' sets.
--
-- Returns {entries deleted by this call, members left to handle}.
local tag_set, pending = KEYS[1], KEYS[2]
local tag, count, tag_prefix = ARGV[1], ARGV[2], ARGV[3]

if ARGV[4] == '1' and redis.call('EXISTS', tag_set) == 1 then
  -- ZUNIONSTORE replaces the removal set, dropping its time to live: keep the
  -- longer of the two, so a removal that never finishes leaves nothing forever.
  local ttl = math.max(redis.call('PTTL', tag_set), redis.call('PTTL', pending))
  redis.call('ZUNIONSTORE', pending, 2, pending, tag_set, 'AGGREGATE', 'MAX')
  redis.call('DEL', tag_set)
  if ttl > 0 then
    redis.call('PEXPIRE', pending, ttl)
  end
end

local popped = redis.call('ZPOPMIN', pending, count)
local deleted = 0
for i = 1, #popped, 2 do
  local entry = popped[i]
  local found = redis.pcall('HGET', entry, 't')
  if type(found) == 'string' then
    local carries = false
    for t in string.gmatch(found, '[^\31]+') do
      if t == tag then
        carries = true
        break
      end
    end
    if carries then
      for t in string.gmatch(found, '[^\31]+') do
        if t ~= tag then
          redis.call('ZREM', tag_prefix .. t, entry)
        end
      end
      redis.call('DEL', entry)
      deleted = deleted + 1
    end
  end
end
return {deleted, redis.call('ZCARD', pending)}
