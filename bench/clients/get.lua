--- One throughput client of `make bench`: N GETs of /payments/<id> at a
-- fixed concurrency through one layer of the stack, timed in-process
-- (monotonic clock, first request to last answer). Prints one JSON line.
--   lua5.4 bench/clients/get.lua MODE BASE_URL N CONCURRENCY [RSS_EVERY]
-- MODE: sdk (payments:get, decoded data), gs_request (client:request,
-- the envelope), http_json (gigstack.async.http + gigstack.async.json),
-- http_cjson (gigstack.async.http + plain cjson), http_raw (no decode),
-- core (gigstack.core request/step, no tasks).
-- With RSS_EVERY, VmRSS is sampled every RSS_EVERY answers (flatness),
-- after a full garbage collection.
local core = require "gigstack.core"
local cjson = require "cjson"

local mode, base, n, conc, rss_every = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
if not (mode and base and n and conc) then
  io.stderr:write("usage: get.lua MODE BASE_URL N CONCURRENCY [RSS_EVERY]\n")
  os.exit(2)
end
n, conc = math.tointeger(n), math.tointeger(conc)

local KEY = "sk_bench"
local WANT_ID = "payment_1234567890"   -- the id in bench/fixtures/payment.json

package.path = "bench/lib/?.lua;" .. package.path   -- run from the repository root
local status_kb = require("proc").status_kb

local done, bad, first_error = 0, 0, nil
local samples = {}
local function answered(ok, why)
  done = done + 1
  if not ok then
    bad = bad + 1
    first_error = first_error or tostring(why)
  end
  if rss_every and done % rss_every == 0 then
    -- after a full collection: what the process holds, not garbage that
    -- happens to await the next GC cycle (which makes RSS saw-tooth)
    local before = status_kb("VmRSS")
    collectgarbage("collect")
    samples[#samples + 1] = { requests = done, rss_kb = status_kb("VmRSS"), rss_before_gc_kb = before,
      lua_kb = math.floor(collectgarbage("count")) }
  end
end

local function path_of(i) return "/payments/pay_" .. i end

local t0, t1
if mode == "core" then
  -- the engine alone: keep CONCURRENCY requests started, answer events
  -- straight from core.step, no coroutine anywhere
  local headers = { "Accept: application/json", "Authorization: Bearer " .. KEY }
  local started = 0
  local function start()
    started = started + 1
    assert(core.request{ method = "GET", url = base .. path_of(started), headers = headers, retries = 0 })
  end
  t0 = core.now()
  for _ = 1, math.min(conc, n) do start() end
  while done < n do
    for _, ev in ipairs(core.step(true)) do
      if ev.type == "response" then
        answered(ev.error == 0 and ev.status == 200 and #ev.body > 0,
          ev.message or ("HTTP " .. tostring(ev.status)))
        if started < n then start() end
      end
    end
  end
  t1 = core.now()
else
  local sched = require "gigstack.async.sched"
  local one   -- one request and its check: returns ok, why
  if mode == "sdk" or mode == "gs_request" then
    local gigstack = require "gigstack"
    local gs = gigstack.new{ base_url = base, api_key = KEY, concurrency = conc }
    if mode == "sdk" then
      one = function(i)
        local p, err = gs.payments:get("pay_" .. i)
        return p ~= nil and p.id == WANT_ID, err
      end
    else
      one = function(i)
        local env, err = gs:request("GET", path_of(i))
        return env ~= nil and type(env.data) == "table" and env.data.id == WANT_ID, err
      end
    end
  else
    local http = require "gigstack.async.http"
    local headers = { Accept = "application/json", Authorization = "Bearer " .. KEY }
    local decode
    if mode == "http_json" then
      decode = require("gigstack.async.json").decode
    elseif mode == "http_cjson" then
      decode = cjson.decode
    elseif mode ~= "http_raw" then
      io.stderr:write("get.lua: unknown mode ", mode, "\n")
      os.exit(2)
    end
    one = function(i)
      local resp, err = http.request{ method = "GET", url = base .. path_of(i), headers = headers }
      if not resp or resp.status ~= 200 then return false, err or ("HTTP " .. tostring(resp.status)) end
      if decode then
        local env = decode(resp.body)
        return type(env) == "table" and env.data.id == WANT_ID, "bad body"
      end
      return #resp.body > 0, "empty body"
    end
  end
  local nexti = 1
  sched.run(function()
    t0 = core.now()
    local workers = {}
    for w = 1, math.min(conc, n) do
      workers[w] = sched.spawn(function()
        while nexti <= n do
          local i = nexti
          nexti = nexti + 1
          answered(one(i))
        end
      end)
    end
    for _, w in ipairs(workers) do sched.join(w) end
    t1 = core.now()
  end)
end

local seconds = (t1 - t0) / 1000
print(cjson.encode{
  mode = mode, requests = n, concurrency = conc, seconds = seconds, rps = n / seconds,
  errors = bad, first_error = first_error, rss_samples = rss_every and samples or nil,
  vmhwm_kb = status_kb("VmHWM"), vmrss_kb = status_kb("VmRSS"),
})
