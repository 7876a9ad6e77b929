--- gigstack: the Lua SDK for the gigstack API (Mexican CFDI invoicing,
-- payments, receipts). Calls look blocking but suspend only their task,
-- so one script can keep hundreds of calls in flight.
--
--   local gigstack = require "gigstack"
--   gigstack.run(function()
--     local gs = gigstack.new{ api_key = os.getenv("GIGSTACK_API_KEY") }
--     local page = assert(gs.clients:list{ limit = 10 })
--   end)
local client = require "gigstack.client"
local resources = require "gigstack.resources"
local sched = require "gigstack.async.sched"
local errors = require "gigstack.async.errors"

local M = {}

M.VERSION = client.VERSION
M.defaults = client.defaults

--- gigstack.new{api_key, base_url, team, timeout, connect_timeout,
-- concurrency} -> client with resources (clients, services, payments,
-- invoices). The key defaults to $GIGSTACK_API_KEY.
function M.new(opts)
  return resources.attach(client.new(opts))
end

--- Run fn in a task and drive the loop until it (and the tasks it
-- spawned) finish. opts.timeout is a watchdog in seconds.
M.run = sched.run
M.spawn = sched.spawn
M.join = sched.join
M.sleep = sched.sleep

--- Run functions concurrently; returns the first result of each, in
-- order. If any raised, the first error is raised after all finished.
function M.all(...)
  local fns = table.pack(...)
  if fns.n == 1 and type(fns[1]) == "table" then fns = fns[1]; fns.n = #fns end
  for i = 1, fns.n do
    if type(fns[i]) ~= "function" then
      error("gigstack.all: argument " .. i .. " must be a function", 2)
    end
  end
  return table.unpack(sched.all(fns), 1, fns.n)
end

--- Run fn(item) for every item with at most `limit` running at once;
-- returns results in order (each {ok, value_or_err}).
function M.map(items, limit, fn)
  local results, nexti, n = {}, 1, #items
  local function worker()
    while nexti <= n do
      local i = nexti
      nexti = nexti + 1
      results[i] = table.pack(pcall(fn, items[i], i))
    end
  end
  local workers = {}
  for w = 1, math.max(1, math.min(limit, n)) do workers[w] = worker end
  if n > 0 then M.all(table.unpack(workers)) end
  return results
end

--- gigstack.timeout(seconds, fn, ...): run fn as a group; when it takes
-- longer, every request it (or a task it spawned) has in flight is
-- cancelled, its `<close>` handlers run, and timeout returns nil, err
-- (kind "timeout"). Otherwise it returns fn's results.
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds < 0 then
    error("gigstack.timeout: seconds must be a number >= 0", 2)
  end
  if type(fn) ~= "function" then error("gigstack.timeout: fn must be a function", 2) end
  return sched.within(seconds, function()
    return errors.new{ kind = "timeout", message = string.format("gigstack.timeout: %g s elapsed", seconds) }
  end, fn, ...)
end

--- gigstack.every("0 9 * * 1-5", fn, {tz = "America/Mexico_City"}):
-- run fn on a cron schedule (see gigstack.runner.schedule).
function M.every(expr, fn, opts)
  return require("gigstack.runner.schedule").every(expr, fn, opts)
end

--- gigstack.on("payment.succeeded", fn, {port, secret, journal}) ->
-- listener {url, secret, close}: see gigstack.runner.webhooks.
function M.on(kind, fn, opts)
  return require("gigstack.runner.webhooks").on(kind, fn, opts)
end

M.is_error = errors.is

--- Raise err (an error value) when v is nil: `local p = gigstack.check(gs.payments:get(id))`.
function M.check(v, err, ...)
  if v == nil and err ~= nil then error(err, 2) end
  return v, err, ...
end

return M
