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
-- SQLite one, gigstack.runner.journal_pg the PostgreSQL one (runners on
-- several machines); both implement the same semantics:
--   get(key)            -> result text | nil; raises on a read error
--   claim(key, lease)   -> "done", result | "claimed", recovered | "busy", owner
--                          (atomic: of concurrent claimers one gets "claimed")
--   done(key, result)   durable on return; drops the claim
--   release(key)        gives up a claim after a failure
--   close()

M.opened = {}        -- every journal opened in this process (the run summary reads them)
M.stopped = nil      -- a reason once the run must start no new work (--lock lost)

--- Which backend a journal location names: "postgres", url for
-- postgres:// and postgresql:// URLs, else "sqlite", file (a bare path,
-- or sqlite:path).
function M.backend(location)
  if location:match("^postgres://") or location:match("^postgresql://") then
    return "postgres", location
  end
  return "sqlite", location:match("^sqlite:(.+)$") or location
end

--- The journal location gigstack-run was given (--journal, else
-- $GIGSTACK_JOURNAL_URL), or nil.
function M.configured()
  local loc = M.location or os.getenv("GIGSTACK_JOURNAL_URL")
  if loc and loc ~= "" then return loc end
end

--- Open (or create) the journal at location: a SQLite file (a path or
-- sqlite:path) or a PostgreSQL database (postgres://...; see
-- gigstack.runner.journal_pg). Without a location, the configured one.
-- Raises on failure with the database's reason. opts.lease: seconds a
-- claim holds against another machine (a dead process on this one loses
-- its claim at once; 600); PostgreSQL also takes opts.pool and
-- opts.reconnect.
function M.open(location, opts)
  location = location or M.configured()
  if type(location) ~= "string" or location == "" then
    error("journal.open: location must be a file name, sqlite:FILE or postgres://...", 2)
  end
  opts = opts or {}
  local lease = opts.lease or M.lease or 600
  if type(lease) ~= "number" or lease <= 0 then error("journal.open: lease must be a number of seconds > 0", 2) end
  local kind, where = M.backend(location)
  local db, err
  if kind == "postgres" then
    local ok, r = pcall(require("gigstack.runner.journal_pg").open, where, { lease = lease, pool = opts.pool,
      reconnect = opts.reconnect or M.reconnect, on_event = opts.on_event })
    if not ok then error(r, 2) end
    db = r
  else
    db, err = core.journal(where)
    if not db then error(err, 2) end
  end
  local j = setmetatable({ db = db, path = location, backend = kind, ran = 0, skipped = 0,
    recovered = 0, taken = 0, waited = 0, lease = lease }, Journal)
  M.opened[#M.opened + 1] = j
  return j
end

--- The run's shared journal: the configured location, opened once.
function M.default()
  if M.shared and not M.shared.closed then return M.shared end
  local loc = M.configured()
  if not loc then return nil end
  M.shared = M.open(loc)
  return M.shared
end

--- Start no new work in any journal of this process (the lock was lost).
function M.stop(reason)
  M.stopped = reason or "stopped"
end

local function stopped() return M.stopped end

--- Counters for the run summary: claims taken, lost (a lease ran out
-- while the work ran), retried (a dead runner's claim taken over).
function Journal:metrics()
  return { taken = self.taken, ran = self.ran, skipped = self.skipped, retried = self.recovered,
    lost = self.db.lost or 0, waited = self.waited, reconnects = self.db.reconnects or 0 }
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
    if M.stopped then
      return nil, errors.new{ kind = "stopped", message = "journal: " .. key .. " not started: " .. M.stopped }
    end
    local state, value = self.db:claim(key, self.lease)
    if state == "done" then
      self.skipped = self.skipped + 1
      return json.decode(value), "skipped"
    elseif state == "claimed" then
      self.taken = self.taken + 1
      if value then self.recovered = self.recovered + 1 end
      break
    elseif waited >= wait then
      return nil, errors.new{ kind = "busy", message = "journal: " .. key .. " is being worked on by "
        .. tostring(value) .. (waited > 0 and string.format(" (waited %g s)", waited) or "") }
    end
    if waited == 0 then self.waited = self.waited + 1 end
    sched.sleep(0.05)
    waited = waited + 0.05
  end
  self.active = (self.active or 0) + 1
  if self.db.renew then self:heartbeat() end
  local ok, result, err = pcall(fn, M.idempotency_key(key))
  self.active = self.active - 1
  if self.active == 0 and self.hb and not self.hb.done then sched.cancel(self.hb, "idle") end
  if not ok or result == nil then
    self.db:release(key)
    if not ok then error(result, 0) end
    return nil, err
  end
  self.db:done(key, json.encode(result) or "true")
  self.ran = self.ran + 1
  return result, "done"
end

-- SQLite: while work runs, renew this process's claims every lease/3
-- (the PostgreSQL backend renews its own)
function Journal:heartbeat()
  if (self.hb and not self.hb.done) or not sched.current() then return end
  self.hb = sched.spawn(function()
    while not self.closed and self.active > 0 do
      sched.sleep(math.max(self.lease / 3, 0.05))
      if self.closed or self.active == 0 then break end
      self.db:renew(math.ceil(self.lease))
    end
  end)
  self.hb:daemon_set()
  self.hb.silent = true
end

--- The recorded result text of key, or nil; raises on a read error.
function Journal:get(key)
  return self.db:get(tostring(key))
end

--- Record key as done with result (a value encoded as JSON), durably.
function Journal:record(key, result)
  self.db:done(tostring(key), json.encode(result == nil and true or result) or "true")
end

--- Split a batch between runners: map(batch, items, concurrency, fn,
-- {key}) -> results like gigstack.map for the items this runner handled
-- (nil for the others) and the number it handled. On PostgreSQL the
-- runners share a queue table (FOR UPDATE SKIP LOCKED, see
-- gigstack.runner.journal_pg); on SQLite (one machine) each runner walks
-- the items and skips those another process holds or finished, through
-- once. fn(item, i) should do its side effects inside journal:once; an
-- item counts as handled by this runner when its fn ran here.
function Journal:map(batch, items, concurrency, fn, opts)
  if type(batch) ~= "string" or batch == "" then error("journal:map: batch must be a name", 2) end
  if type(items) ~= "table" then error("journal:map: items must be a list", 2) end
  if type(fn) ~= "function" then error("journal:map: fn must be a function", 2) end
  local keyf = opts and opts.key or function(item, i) return type(item) == "table" and item.id or i end
  if self.db.map then
    local results = self.db:map(batch, items, concurrency, fn, { key = keyf, stopped = stopped })
    local n = 0
    for _ in pairs(results) do n = n + 1 end
    return results, n
  end
  -- SQLite: a marker key per item, taken with once (wait = 0), so two
  -- processes on one file never take the same item
  local results, n, pending = {}, 0, {}
  for i = 1, #items do pending[i] = i end
  while #pending > 0 do
    local again, nexti = {}, 1
    local function worker()
      while nexti <= #pending and not M.stopped do
        local i = pending[nexti]
        nexti = nexti + 1
        local r
        local _, how = self:once("batch:" .. batch .. ":" .. tostring(keyf(items[i], i)), function()
          r = table.pack(pcall(fn, items[i], i))
          return r[1] and not (r[2] == nil and r[3] ~= nil) or nil
        end, { wait = 0 })
        if r then results[i] = r; n = n + 1
        elseif how ~= "skipped" then again[#again + 1] = i end
      end
    end
    local workers = {}
    for w = 1, math.max(1, math.min(concurrency or 8, #pending)) do workers[w] = worker end
    sched.all(workers)
    if M.stopped then break end
    if #again == #pending then sched.sleep(0.2) end
    pending = again
  end
  return results, n
end

function Journal:close()
  self.closed = true
  self.db:close()
end

return M
