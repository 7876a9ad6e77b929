--- Bytes per request in flight, for `make bench`: the process's VmRSS
-- after one warm-up request, then with N requests pending at once
-- against an emulator that holds each answer DELAY_MS (X-Mock-Latency);
-- (RSS pending - RSS before) / N, and how many of the N the engine has on
-- the wire (core.stats inflight) or queued. Prints one JSON line.
--   lua5.4 bench/clients/inflight.lua BASE_URL N DELAY_MS
local gigstack = require "gigstack"
local sched = require "gigstack.async.sched"
local core = require "gigstack.core"
local cjson = require "cjson"

local base, n, delay = arg[1], math.tointeger(tonumber(arg[2] or "")), tonumber(arg[3] or "")
if not (base and n and delay) then
  io.stderr:write("usage: inflight.lua BASE_URL N DELAY_MS\n")
  os.exit(2)
end

package.path = "bench/lib/?.lua;" .. package.path   -- run from the repository root
local status_kb = require("proc").status_kb

local out = { requests = n, delay_ms = delay }
gigstack.run(function()
  -- the client asks for all N at once
  local gs = gigstack.new{ base_url = base, api_key = "sk_test_mock", concurrency = n, timeout = 60 }
  assert(gs.ping:get())   -- warm: modules, curl, the first connection
  collectgarbage("collect")
  out.rss_before_kb = status_kb("VmRSS")
  local ok, failed, first_error = 0, 0, nil
  local t0 = core.now()
  local tasks = {}
  for i = 1, n do
    tasks[i] = sched.spawn(function()
      local env, err = gs:request("GET", "/ping", { headers = { ["X-Mock-Latency"] = tostring(delay) } })
      if env then ok = ok + 1 else failed = failed + 1; first_error = first_error or tostring(err) end
    end)
  end
  -- wait until every request is handed to the engine and the number on
  -- the wire stops growing (bounded: well inside the server's delay)
  local inflight, queued
  local last, stable_since = -1, core.now()
  while core.now() - t0 < delay * 0.6 do
    sched.sleep(0.01)
    inflight, queued = core.stats()
    if inflight ~= last then last, stable_since = inflight, core.now() end
    if inflight + queued == n and (inflight == n or core.now() - stable_since >= 150) then break end
  end
  collectgarbage("collect")
  out.rss_pending_kb = status_kb("VmRSS")
  out.on_wire, out.queued = core.stats()
  out.sampled_after_ms = core.now() - t0
  for _, t in ipairs(tasks) do sched.join(t) end
  out.all_answered_s = (core.now() - t0) / 1000
  out.ok, out.errors, out.first_error = ok, failed, first_error
end, { timeout = 120 })
out.bytes_per_request = (out.rss_pending_kb - out.rss_before_kb) * 1024 / n
out.vmhwm_kb = status_kb("VmHWM")
print(cjson.encode(out))
