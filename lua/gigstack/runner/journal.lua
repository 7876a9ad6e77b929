--- The state journal: `journal:once(key, fn)` runs fn only if `key` is
-- not done, and records fn's result durably (SQLite, WAL, synchronous
-- FULL) after it succeeds. fn receives an idempotency key derived from
-- `key`, so if the process dies after the API acted but before the
-- journal recorded it, the re-run's request is a replay, not a duplicate.
local core = require "gigstack.core"
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"
local sched = require "gigstack.async.sched"

local M = {}

local Journal = {}
Journal.__index = Journal

-- A backend is the claim interface below; gigstack.core.journal is the
-- SQLite one, and another (PostgreSQL, for runners on several machines)
-- implements the same semantics:
--   get(key)            -> result text | nil; raises on a read error
--   claim(key, lease)   -> "done", result | "claimed", recovered | "busy", owner
--                          (atomic: of concurrent claimers one gets "claimed")
--   done(key, result)   durable on return; drops the claim
--   release(key)        gives up a claim after a failure
--   close()

--- Open (or create) the journal at path; raises on failure with the
-- database's reason. opts.lease: seconds a claim holds against another
-- machine (a dead process on this one loses its claim at once; 600).
function M.open(path, opts)
  if type(path) ~= "string" or path == "" then error("journal.open: path must be a file name", 2) end
  local db, err = core.journal(path)
  if not db then error(err, 2) end
  return setmetatable({ db = db, path = path, ran = 0, skipped = 0, recovered = 0,
    lease = opts and opts.lease or 600 }, Journal)
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
-- returned nil, err (nothing recorded; a later run retries it). If fn
-- raises, the claim is released and the error raised again.
--
-- The key is claimed first, atomically: while another task or process
-- runs it, once waits (opts.wait seconds, default the lease) and then
-- returns its result as "skipped"; with opts.wait = 0 it returns nil and
-- an error of kind "busy" at once. A claim left by a process that died
-- is taken over; the idempotency key derived from `key` makes the repeated
-- API call a replay, not a duplicate.
function Journal:once(key, fn, opts)
  key = tostring(key)
  local wait = opts and opts.wait or self.lease
  local waited = 0
  while true do
    local state, value = self.db:claim(key, self.lease)
    if state == "done" then
      self.skipped = self.skipped + 1
      return json.decode(value), "skipped"
    elseif state == "claimed" then
      if value then self.recovered = self.recovered + 1 end
      break
    elseif waited >= wait then
      return nil, errors.new{ kind = "busy", message = "journal: " .. key .. " is being worked on by "
        .. tostring(value) .. (waited > 0 and string.format(" (waited %g s)", waited) or "") }
    end
    sched.sleep(0.05)
    waited = waited + 0.05
  end
  local ok, result, err = pcall(fn, M.idempotency_key(key))
  if not ok or result == nil then
    self.db:release(key)
    if not ok then error(result, 0) end
    return nil, err
  end
  self.db:done(key, json.encode(result) or "true")
  self.ran = self.ran + 1
  return result, "done"
end

--- The recorded result text of key, or nil; raises on a read error.
function Journal:get(key)
  return self.db:get(tostring(key))
end

--- Record key as done with result (a value encoded as JSON), durably.
function Journal:record(key, result)
  self.db:done(tostring(key), json.encode(result == nil and true or result) or "true")
end

function Journal:close()
  self.db:close()
end

return M
