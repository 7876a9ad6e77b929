--- The state journal: `journal:once(key, fn)` runs fn only if `key` is
-- not done, and records fn's result durably (SQLite, WAL, synchronous
-- FULL) after it succeeds. fn receives an idempotency key derived from
-- `key`, so if the process dies after the API acted but before the
-- journal recorded it, the re-run's request is a replay, not a duplicate.
local core = require "gigstack.core"
local json = require "gigstack.async.json"

local M = {}

local Journal = {}
Journal.__index = Journal

--- Open (or create) the journal at path; raises on failure.
function M.open(path)
  if type(path) ~= "string" or path == "" then error("state.open: path must be a file name", 2) end
  local db, err = core.journal(path)
  if not db then error(err, 2) end
  return setmetatable({ db = db, path = path, ran = 0, skipped = 0 }, Journal)
end

--- The API idempotency key for a journal key (stable, at most 255 chars).
function M.idempotency_key(key)
  key = tostring(key)
  if #key <= 240 then return "gs:" .. key end
  local h = 2166136261
  for i = 1, #key do h = ((h ~ key:byte(i)) * 16777619) & 0xffffffff end
  return string.format("gs:%s:%08x", key:sub(1, 220), h)
end

--- Run fn(idempotency_key) unless key is done. Returns result, "done"
-- (ran now) or result, "skipped" (done before), or nil, err when fn
-- returned nil, err (nothing recorded; a later run retries it).
function Journal:once(key, fn)
  local prev = self.db:get(key)
  if prev then
    self.skipped = self.skipped + 1
    return json.decode(prev), "skipped"
  end
  local result, err = fn(M.idempotency_key(key))
  if result == nil then return nil, err end
  local text = json.encode(result) or "true"
  assert(self.db:done(key, text))
  self.ran = self.ran + 1
  return result, "done"
end

function Journal:close()
  self.db:close()
end

return M
