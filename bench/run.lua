--- `make bench`: gigstack-lua against its peers, in one run, on loopback
-- only, bounded in count and time. Prints a table of figures and ratios
-- with the targets of issue 12 (PASS/FAIL), writes BENCH_OUT/results.json
-- and BENCH_OUT/throughput.png. It reports; it never fails the build
-- (exit 0 whatever the figures; 1 only when it cannot run at all).
--
--   lua5.4 bench/run.lua        (from the repository root; `make bench`
--                                sets LUA_PATH/LUA_CPATH and these:)
-- Environment: GIGSTACK_RUN (build/gigstack-run), BENCH_OUT (build/bench),
-- BENCH_SCALE (1: multiplies every request count and duration; 0.25 for a
-- quick look), BENCH_REPS (3: interleaved repetitions of the throughput
-- table, medians reported).
local core = require "gigstack.core"
local cjson = require "cjson"
package.path = "bench/lib/?.lua;" .. package.path
local rss_trend = require "rss_trend"   -- the "RSS flat" verdict (spec/bench_rss_trend_spec.lua)

local RUN = os.getenv("GIGSTACK_RUN") or "build/gigstack-run"
local OUT = os.getenv("BENCH_OUT") or "build/bench"
local SCALE = tonumber(os.getenv("BENCH_SCALE") or "") or 1
local REPS = math.tointeger(tonumber(os.getenv("BENCH_REPS") or "")) or 3
local CONC = 64

local function scaled(n, min) return math.max(min or 1, math.floor(n * SCALE + 0.5)) end

local N_GET = scaled(20000, 1000)          -- GETs per client per repetition
local N_BATCH = scaled(10000, 640)         -- PUE registers
local N_FLAT = scaled(300000, 6000)        -- requests of the RSS-flatness run
local FLAT_EVERY = N_FLAT // 12            -- 25k at scale 1: 12 samples for the trend line
local N_INFLIGHT = 1000                    -- the issue's figure: not scaled
local INFLIGHT_DELAY_MS = 2000
local WRK_SECONDS = math.max(1, math.floor(2 * SCALE + 0.5))
local EMU_WRK_SECONDS = math.max(1, math.floor(3 * SCALE + 0.5))
local LATENCY_S = 0.05

local T_START = core.now()

-- ---------------------------------------------------------------- shell

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Run a command, return its stdout and whether it exited 0.
local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

local function have(cmd) return (select(2, sh("command -v " .. q(cmd) .. " >/dev/null 2>&1"))) end

local function sleep(s) os.execute("sleep " .. s) end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function log(fmt, ...) io.stderr:write(string.format("bench: " .. fmt .. "\n", ...)) end

-- processes started in the background, stopped by stop() or at the end;
-- listed in OUT/running.txt too, so an interrupted run's leftovers are
-- stopped by `run.lua --cleanup` (the Makefile's trap) or the next run
local children = {}
local nginx_prefix
local RUNNING = OUT .. "/running.txt"

local function save_running()
  local lines = {}
  for pid in pairs(children) do lines[#lines + 1] = "pid " .. pid end
  if nginx_prefix then lines[#lines + 1] = "nginx " .. nginx_prefix end
  local f = io.open(RUNNING, "wb")
  if f then f:write(table.concat(lines, "\n"), "\n"); f:close() end
end

--- Start cmd in the background with its output in logfile; returns its pid.
local function spawn(cmd, logfile)
  local out = sh("exec 0</dev/null; " .. cmd .. " > " .. q(logfile) .. " 2>&1 & echo $!")
  local pid = assert(math.tointeger(tonumber(out:match("%d+"))), "cannot start: " .. cmd)
  children[pid] = true
  save_running()
  return pid
end

local function alive(pid) return (select(2, sh("kill -0 " .. pid .. " 2>/dev/null"))) end

--- CPU seconds (user + system) a live process has used so far.
local function cpu_seconds(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  local fields = {}
  for f in stat:gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
  local hz = tonumber((sh("getconf CLK_TCK"))) or 100
  -- after "pid (comm) ", utime and stime are the 12th and 13th fields
  return (tonumber(fields[12]) + tonumber(fields[13])) / hz
end

local function stop(pid)
  if not children[pid] then return end
  children[pid] = nil
  save_running()
  os.execute("kill " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do            -- up to 5 s, then SIGKILL
    if not alive(pid) then return end
    sleep(0.05)
  end
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
end

--- Poll fn() (bounded) until it returns a value.
local function wait_for(what, seconds, fn)
  local t0 = core.now()
  while core.now() - t0 < seconds * 1000 do
    local v = fn()
    if v then return v end
    sleep(0.05)
  end
  error("timed out waiting for " .. what)
end

--- A free loopback TCP port (bound on port 0, then released).
local function free_port()
  local srv, token = assert(core.listen{ host = "127.0.0.1", port = 0 })
  local port = srv:port()
  srv:close()
  core.step(false)   -- let libuv close the listener
  assert(token)
  return port
end

--- The last line of stdout that parses as a JSON object.
local function json_line(out)
  local last
  for line in out:gmatch("[^\n]+") do
    if line:match("^%s*{") then
      local ok, v = pcall(cjson.decode, line)
      if ok and type(v) == "table" then last = v end
    end
  end
  return last
end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- ---------------------------------------------------------------- results

local results = {
  started_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  scale = SCALE, reps = REPS, concurrency = CONC,
  git = (sh("git rev-parse --short HEAD 2>/dev/null"):gsub("%s+$", "")),
  machine = { cores = tonumber((sh("nproc"))), kernel = (sh("uname -r"):gsub("%s+$", "")) },
  throughput = {}, targets = {}, notes = {},
}
local notes = results.notes
local function note(fmt, ...)
  notes[#notes + 1] = string.format(fmt, ...)
  log(fmt, ...)
end

local NODE = have("node") and "node" or (have("nodejs") and "nodejs" or nil)
local NGINX = have("nginx") and "nginx" or (read_file("/usr/sbin/nginx") and "/usr/sbin/nginx" or nil)
local PY = "/usr/bin/python3"    -- Debian's python3, where python3-aiohttp lives
local HAVE_AIOHTTP = (select(2, sh(PY .. " -c 'import aiohttp' 2>/dev/null")))
local HAVE_WRK, HAVE_CURL = have("wrk"), have("curl")
local HAVE_HYPERFINE, HAVE_GNUPLOT = have("hyperfine"), have("gnuplot")
-- the floor programs (bench/floor/*.c, built by `make bench`): libcurl and
-- lua-cjson with nothing of ours, the ceiling of the targets they bound
local FLOOR = OUT .. "/floor"
local HAVE_FLOOR = read_file(FLOOR .. "/libcurl_get") ~= nil

local node_version = NODE and (sh(NODE .. " --version"):gsub("%s+$", "")) or nil
local node_label = "Node " .. (node_version and node_version:match("^v(%d+)") or "?") .. " fetch"

-- ---------------------------------------------------------------- 1. throughput

local function envelope_body()
  local payment = assert(read_file("bench/fixtures/payment.json"), "bench/fixtures/payment.json missing")
  assert(cjson.decode(payment).id == "payment_1234567890", "payment.json is not the seed example")
  -- one line, the fixture's spacing kept: {"data": {...}, "message": ...}
  local one_line = payment:gsub("\n%s*", " "):gsub("%s+$", "")
  return '{"data": ' .. one_line .. ', "message": "Payment retrieved successfully"}'
end

local NGINX_CONF = [[
# written by bench/run.lua: one worker, loopback only, keep-alive without a cap
worker_processes 1;
daemon on;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  client_body_temp_path tmp/body;
  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi;
  scgi_temp_path tmp/scgi;
  server {
    listen 127.0.0.1:@PORT@;
    root @ROOT@/www;
    # GET /v2/payments/<anything>: the payment example in its envelope
    location /v2/payments/ {
      default_type application/json;
      rewrite ^ /payment_envelope.json break;
    }
  }
}
]]

local function nginx_start()
  nginx_prefix = (sh("mktemp -d /tmp/gigstack-bench.XXXXXX"):gsub("%s+$", ""))
  assert(nginx_prefix:match("^/tmp/gigstack%-bench%."), "mktemp failed")
  save_running()
  os.execute("mkdir -p " .. q(nginx_prefix .. "/www") .. " " .. q(nginx_prefix .. "/tmp"))
  -- run as root, nginx's worker is "nobody": it must read the document root
  os.execute("chmod 755 " .. q(nginx_prefix))
  local body = envelope_body()
  write_file(nginx_prefix .. "/www/payment_envelope.json", body)
  local port = free_port()
  write_file(nginx_prefix .. "/nginx.conf",
    (NGINX_CONF:gsub("@PORT@", tostring(port)):gsub("@ROOT@", nginx_prefix)))
  local out, ok = sh(NGINX .. " -p " .. q(nginx_prefix) .. " -c " .. q(nginx_prefix .. "/nginx.conf")
    .. " -e " .. q(nginx_prefix .. "/error.log") .. " 2>&1")
  if not ok then error("nginx did not start: " .. out) end
  local base = "http://127.0.0.1:" .. port .. "/v2"
  local got = wait_for("nginx", 10, function()
    local text, cok = sh("curl -s --max-time 2 " .. q(base .. "/payments/pay_check"))
    return cok and text ~= "" and text or nil
  end)
  assert(got == body, "nginx serves something else than the payment envelope: " .. got:sub(1, 200))
  results.payload_bytes = #body
  return base
end

local function nginx_stop()
  if not nginx_prefix then return end
  sh(NGINX .. " -p " .. q(nginx_prefix) .. " -c " .. q(nginx_prefix .. "/nginx.conf")
    .. " -e " .. q(nginx_prefix .. "/error.log") .. " -s quit 2>&1")
  local pidfile = nginx_prefix .. "/nginx.pid"
  pcall(wait_for, "nginx to stop", 5, function() return read_file(pidfile) == nil end)
  os.execute("rm -rf " .. q(nginx_prefix))
  nginx_prefix = nil
  save_running()
end

-- the clients of the table: id, label, runner(base) -> {rps, errors, ...}
local function lua_client(mode)
  return function(base)
    local out = sh("lua5.4 bench/clients/get.lua " .. mode .. " " .. q(base) .. " " .. N_GET .. " " .. CONC
      .. " 2>&1")
    local r = json_line(out)
    if not r then return { error = out:sub(1, 300) } end
    return r
  end
end

local function run_wrk(base)
  local out = sh(string.format("wrk -t1 -c%d -d%ds -H 'Authorization: Bearer sk_bench' %s 2>&1",
    CONC, WRK_SECONDS, q(base .. "/payments/pay_1")))
  local rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)"))
  if not rps then return { error = out:sub(1, 300) } end
  local non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
  local sockerr = out:match("Socket errors:[^\n]*")
  return { rps = rps, errors = non2xx, first_error = sockerr, requests = tonumber(out:match("(%d+) requests in")),
    seconds = WRK_SECONDS, timing = "wrk's own (duration-bounded, 1 thread)" }
end

local curl_cfg
local function run_curl(base)
  if not curl_cfg then
    curl_cfg = OUT .. "/curl_urls.txt"
    local parts = {}
    for i = 1, N_GET do
      parts[i] = string.format('url = "%s/payments/pay_%d"\noutput = "/dev/null"\n', base, i)
    end
    write_file(curl_cfg, table.concat(parts))
  end
  local t0 = core.now()
  local out = sh(string.format("curl -s --parallel --parallel-max %d -H 'Authorization: Bearer sk_bench' "
    .. "-H 'Accept: application/json' -w '%%{http_code}\\n' -K %s 2>/dev/null", CONC, q(curl_cfg)))
  local seconds = (core.now() - t0) / 1000
  local ok = select(2, out:gsub("200\n", ""))
  return { rps = N_GET / seconds, seconds = seconds, requests = N_GET, errors = N_GET - ok,
    timing = "process wall time (includes curl's start and reading the URL list)" }
end

--- A floor client (bench/floor/libcurl_get.c): libcurl alone with the
-- engine's options on epoll, as libuv waits (flags ""); "--decode" adds
-- lua-cjson's decode of every body in an embedded Lua; "--poll" waits with
-- poll() instead; "--minimal" asks libcurl for the least.
local function floor_get(flag)
  return function(base)
    local out = sh(string.format("%s %s %d %d %s 2>&1", q(FLOOR .. "/libcurl_get"), q(base), N_GET, CONC, flag))
    local r = json_line(out)
    if not r then return { error = out:sub(1, 300) } end
    r.timing = "in-process monotonic clock, first request to last answer"
    return r
  end
end

local function run_node(base)
  local out = sh(NODE .. " bench/clients/node_fetch.mjs " .. q(base) .. " " .. N_GET .. " " .. CONC .. " 2>&1")
  return json_line(out) or { error = out:sub(1, 300) }
end

local function run_aiohttp(base)
  local out = sh(PY .. " bench/clients/aiohttp_get.py " .. q(base) .. " " .. N_GET .. " " .. CONC .. " 2>&1")
  return json_line(out) or { error = out:sub(1, 300) }
end

local CLIENTS = {
  { id = "sdk_get", label = "SDK payments:get (decode)", run = lua_client("sdk") },
  { id = "gs_request", label = "gs:request", run = lua_client("gs_request") },
  { id = "http_json", label = "http.request + gigstack.async.json.decode", run = lua_client("http_json") },
  { id = "http_cjson", label = "http.request + plain cjson.decode", run = lua_client("http_cjson") },
  { id = "http_raw", label = "http.request, no decode", run = lua_client("http_raw") },
  { id = "core", label = "core.request/step, no tasks", run = lua_client("core") },
  { id = "wrk", label = "wrk (1 thread)", run = run_wrk, need = HAVE_WRK, why = "wrk not installed" },
  { id = "floor_libcurl", label = "floor: libcurl, engine's options, epoll", run = floor_get(""),
    need = HAVE_FLOOR, why = "bench/floor not built (make bench builds it)" },
  { id = "floor_libcurl_poll", label = "floor: libcurl, engine's options, poll()", run = floor_get("--poll"),
    need = HAVE_FLOOR, why = "bench/floor not built (make bench builds it)" },
  { id = "floor_cjson", label = "floor: libcurl + cjson.decode, epoll", run = floor_get("--decode"),
    need = HAVE_FLOOR, why = "bench/floor not built (make bench builds it)" },
  { id = "floor_best", label = "floor: least libcurl + cjson.decode, poll()",
    run = floor_get("--minimal --decode --poll"), need = HAVE_FLOOR,
    why = "bench/floor not built (make bench builds it)" },
  { id = "curl_parallel", label = "curl --parallel (no decode)", run = run_curl, need = HAVE_CURL,
    why = "curl not installed" },
  { id = "node_fetch", label = node_label .. " (res.json)", run = run_node, need = NODE ~= nil,
    why = "node not installed" },
  { id = "aiohttp", label = "python aiohttp (resp.json)", run = run_aiohttp, need = HAVE_AIOHTTP,
    why = "python3-aiohttp not installed for " .. PY },
}

for _, c in ipairs(CLIENTS) do
  results.throughput[c.id] = { label = c.label, runs = {}, errors = 0 }
end
-- what a section that could not run leaves in the report
results.rss_flat = { error = "not run" }
results.inflight = { error = "not run" }
results.batch = { sales = N_BATCH, latency_ms = LATENCY_S * 1000, concurrency = CONC,
  bound_s = N_BATCH * LATENCY_S / CONC, sdk = { error = "not run" }, script = { error = "not run" } }
results.startup = { error = "not run" }
results.emulator = { error = "not run" }

local function section_throughput(base)
  log("1. throughput: %d GETs x %d repetitions per client, concurrency %d", N_GET, REPS, CONC)
  local tp = results.throughput
  for _, c in ipairs(CLIENTS) do
    if c.need == false then tp[c.id].skipped = c.why; note("skipped %s: %s", c.label, c.why) end
  end
  for rep = 1, REPS do
    for _, c in ipairs(CLIENTS) do
      local t = tp[c.id]
      if not t.skipped then
        local ok, r = pcall(c.run, base)
        if not ok then r = { error = tostring(r) } end
        if r.rps and not r.error then
          t.runs[#t.runs + 1] = r.rps
          t.errors = t.errors + (r.errors or 0)
          t.first_error = t.first_error or r.first_error
          t.timing = r.timing or "in-process monotonic clock, first request to last answer"
          log("   rep %d %-42s %9.0f req/s%s", rep, c.label, r.rps,
            (r.errors or 0) > 0 and ("  (" .. r.errors .. " errors)") or "")
        else
          t.failures = (t.failures or 0) + 1
          t.first_error = t.first_error or r.error
          log("   rep %d %-42s FAILED: %s", rep, c.label, tostring(r.error))
        end
      end
    end
  end
  for _, c in ipairs(CLIENTS) do tp[c.id].rps = median(tp[c.id].runs) end
  local node_rps = tp.node_fetch.rps
  local curl_rps = tp.curl_parallel.rps
  for _, c in ipairs(CLIENTS) do
    local t = tp[c.id]
    if t.rps then
      t.vs_node = node_rps and t.rps / node_rps or nil
      t.vs_curl = curl_rps and t.rps / curl_rps or nil
    end
  end
end

local function section_flat(base)
  log("3. RSS over %d SDK payments:get (sampled every %d)", N_FLAT, FLAT_EVERY)
  local out = sh("lua5.4 bench/clients/get.lua sdk " .. q(base) .. " " .. N_FLAT .. " " .. CONC .. " "
    .. FLAT_EVERY .. " 2>&1")
  local r = json_line(out)
  if not r then results.rss_flat = { error = out:sub(1, 300) }; return end
  local first, hi = r.rss_samples[1].rss_kb, 0
  for _, s in ipairs(r.rss_samples) do hi = math.max(hi, s.rss_kb) end
  local trend, terr = rss_trend.judge(r.rss_samples)
  if not trend then results.rss_flat = { error = terr }; return end
  -- judged: the least-squares trend (see bench/lib/rss_trend.lua); the
  -- highest sample over the first is kept as information (noise shows there)
  results.rss_flat = { requests = N_FLAT, every = FLAT_EVERY, samples = r.rss_samples, vmhwm_kb = r.vmhwm_kb,
    trend = trend, trend_pct = trend.trend_pct, max_over_first_pct = (hi - first) * 100 / first,
    method = "least-squares slope of VmRSS (after a full GC) over requests, projected over the sampled span, "
      .. "as % of the first sample", rps = r.rps, errors = r.errors, seconds = r.seconds }
end

-- ---------------------------------------------------------------- emulator

--- Start `gigstack-run --serve-mock 127.0.0.1:0 [args]`; returns pid, base URL.
local function emulator_start(args, name)
  local logfile = OUT .. "/" .. name .. ".log"
  local pid = spawn(RUN .. " --serve-mock 127.0.0.1:0 " .. (args or ""), logfile)
  local base = wait_for("the emulator to print its URL", 15, function()
    return (read_file(logfile) or ""):match("(http://127%.0%.0%.1:%d+/v2)")
  end)
  return pid, base
end

local function section_inflight()
  log("3. %d requests in flight (emulator holds each answer %d ms)", N_INFLIGHT, INFLIGHT_DELAY_MS)
  local pid, base = emulator_start("", "emulator_inflight")
  local out = sh("lua5.4 bench/clients/inflight.lua " .. q(base) .. " " .. N_INFLIGHT .. " "
    .. INFLIGHT_DELAY_MS .. " 2>&1")
  stop(pid)
  results.inflight = json_line(out) or { error = out:sub(1, 300) }
  if not HAVE_FLOOR then return end
  -- the floor: libcurl alone, the engine's 2 KB buffer and libcurl's
  -- minimum of 1 KB; a fresh emulator each (the last one still holds the
  -- previous program's N connections until their answers are due)
  results.inflight.floor = {}
  for _, buffer in ipairs{ 2048, 1024 } do
    local fpid, fbase = emulator_start("", "emulator_inflight_floor_" .. buffer)
    local fout = sh(string.format("%s %s %d %d 2>&1", q(FLOOR .. "/libcurl_pending"), q(fbase .. "/ping"),
      N_INFLIGHT, buffer))
    stop(fpid)
    local r = json_line(fout)
    if r and r.running ~= r.requests then   -- not all on the wire: the figure would flatter libcurl
      r = { error = string.format("only %s of %s requests on the wire", tostring(r.running), tostring(r.requests)) }
    end
    r = r or { error = fout:sub(1, 300) }
    r.buffer = buffer
    results.inflight.floor[#results.inflight.floor + 1] = r
  end
end

local function sales_csv(n)
  local path = OUT .. "/sales_" .. n .. ".csv"
  local lines = {}
  for l in io.lines("scripts/data/sales.csv") do lines[#lines + 1] = l end
  local rows = { lines[1] }
  for i = 1, n do   -- the sample rows in turn, each a sale of its own
    local row = lines[2 + (i - 1) % (#lines - 1)]
    rows[#rows + 1] = (row:gsub("^[^,]*", string.format("BENCH-%06d", i)))
  end
  write_file(path, table.concat(rows, "\n") .. "\n")
  return path
end

local function section_batch()
  local bound = N_BATCH * LATENCY_S / CONC
  log("2. batch: %d PUE registers at %d ms latency, concurrency %d (bound %.2f s)", N_BATCH,
    LATENCY_S * 1000, CONC, bound)
  local csv = sales_csv(N_BATCH)
  local lat = string.format("--latency %d-%d", LATENCY_S * 1000, LATENCY_S * 1000)

  local pid, base = emulator_start(lat, "emulator_batch_sdk")
  local out = sh("lua5.4 bench/clients/batch.lua " .. q(base) .. " " .. q(csv) .. " " .. CONC .. " 2>&1")
  local cpu = cpu_seconds(pid)
  stop(pid)
  local r = json_line(out)
  if r then
    r.vs_bound = r.seconds / bound
    r.emulator_cpu_s = cpu
  else
    r = { error = out:sub(1, 300) }
  end
  results.batch.sdk = r

  pid, base = emulator_start(lat, "emulator_batch_script")
  local t0 = core.now()
  local cmd = string.format("GIGSTACK_BASE_URL=%s GIGSTACK_API_KEY=sk_test_mock %s scripts/auto_invoice.lua %s "
    .. "--concurrency %d 2>&1", q(base), RUN, q(csv), CONC)
  local sout, ok = sh(cmd)
  local seconds = (core.now() - t0) / 1000
  cpu = cpu_seconds(pid)
  stop(pid)
  local registered = tonumber(sout:match("payments registered:%s*(%d+)"))
  results.batch.script = { command = "gigstack-run scripts/auto_invoice.lua <csv> --concurrency " .. CONC,
    seconds = seconds, vs_bound = seconds / bound, registered = registered, exit_ok = ok,
    errors = N_BATCH - (registered or 0), emulator_cpu_s = cpu,
    timing = "process wall time (start-up and reading the CSV included)",
    output_tail = (not ok or registered ~= N_BATCH) and sout:sub(-400) or nil }
end

local function section_startup()
  log("4. start-up: gigstack-run -e '' vs node -e ''")
  if not NODE then results.startup = { skipped = "node not installed" }; return end
  -- the third command also opens libcurl, what a script's first request
  -- adds (reported next to the target, not part of it)
  local cmds = { RUN .. " -e ''", NODE .. " -e ''",
    RUN .. [[ -e 'assert(require("gigstack.core").curl_version())']] }
  local times = {}
  if HAVE_HYPERFINE then
    local jf = OUT .. "/hyperfine.json"
    local out, ok = sh(string.format("hyperfine -N --warmup 3 --runs 30 --export-json %s %s %s %s 2>&1",
      q(jf), q(cmds[1]), q(cmds[2]), q(cmds[3])))
    local doc = ok and cjson.decode(read_file(jf) or "null")
    if not doc then results.startup = { error = out:sub(1, 300) }; return end
    for i, r in ipairs(doc.results) do times[i] = { median = r.median, mean = r.mean, stddev = r.stddev } end
    results.startup = { tool = "hyperfine -N --warmup 3 --runs 30 (median)" }
  else
    for i, cmd in ipairs(cmds) do   -- 30 runs, each timed with the monotonic clock
      local xs = {}
      for k = 1, 33 do
        local t0 = core.now()
        os.execute(cmd .. " >/dev/null 2>&1")
        if k > 3 then xs[#xs + 1] = (core.now() - t0) / 1000 end
      end
      times[i] = { median = median(xs) }
    end
    results.startup = { tool = "30 runs after 3 warm-ups, os.execute + monotonic clock (median; sh included)" }
  end
  results.startup.gigstack_run_s = times[1].median
  results.startup.node_s = times[2].median
  results.startup.node_version = node_version
  results.startup.ratio = times[1].median / times[2].median
  results.startup.with_libcurl_s = times[3].median
end

local function section_emulator_wrk()
  log("5. emulator under wrk: GET /v2/ping vs POST /v2/payments/register (%d s each)", EMU_WRK_SECONDS)
  if not HAVE_WRK then results.emulator = { skipped = "wrk not installed" }; return end
  local pid, base = emulator_start("", "emulator_wrk")
  local root = base:gsub("/v2$", "")
  local function parse(out)
    return { rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")),
      errors = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0,
      requests = tonumber(out:match("(%d+) requests in")), socket_errors = out:match("Socket errors:[^\n]*") }
  end
  local ping = parse(sh(string.format("wrk -t1 -c%d -d%ds -H 'Authorization: Bearer sk_test_mock' %s 2>&1",
    CONC, EMU_WRK_SECONDS, q(base .. "/ping"))))
  local reg = parse(sh(string.format("wrk -t1 -c%d -d%ds -s bench/wrk/register.lua %s -- %s 2>&1",
    CONC, EMU_WRK_SECONDS, q(root), "bench/fixtures/register.json")))
  stop(pid)
  results.emulator = { ping = ping, register = reg,
    ratio = (ping.rps and reg.rps) and reg.rps / ping.rps or nil }
  -- the floor: the same server and ping, a register that only decodes its
  -- body and encodes one fixed payment (bench/floor/register_floor.lua)
  local logfile = OUT .. "/emulator_floor.log"
  local fpid = spawn(RUN .. " bench/floor/register_floor.lua bench/fixtures/register.json", logfile)
  local fbase = wait_for("the floor emulator to print its URL", 15, function()
    return (read_file(logfile) or ""):match("(http://127%.0%.0%.1:%d+/v2)")
  end)
  local fping = parse(sh(string.format("wrk -t1 -c%d -d%ds -H 'Authorization: Bearer sk_test_mock' %s 2>&1",
    CONC, EMU_WRK_SECONDS, q(fbase .. "/ping"))))
  local freg = parse(sh(string.format("wrk -t1 -c%d -d%ds -s bench/wrk/register.lua %s -- %s 2>&1",
    CONC, EMU_WRK_SECONDS, q((fbase:gsub("/v2$", ""))), "bench/fixtures/register.json")))
  stop(fpid)
  results.emulator.floor = { ping = fping, register = freg,
    ratio = (fping.rps and freg.rps) and freg.rps / fping.rps or nil }
end

-- ---------------------------------------------------------------- report

local function fmt_int(x)
  if not x then return "-" end
  local s = string.format("%.0f", x)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end
local function fmt_x(x) return x and string.format("%.2fx", x) or "-" end

--- A target's row; `floor` is what the floor programs reached on the same
-- measure in this run (nothing of ours in the way), where there is one.
local function target(name, value, ok_when, shown_target, figure, floor)
  local verdict
  if value == nil then verdict = "n/a" else verdict = ok_when(value) and "PASS" or "FAIL" end
  local t = { name = name, value = value, target = shown_target, verdict = verdict, figure = figure,
    floor = floor }
  results.targets[#results.targets + 1] = t
  return t
end

local function report()
  local lines = {}
  local function p(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  local function mark(t) return string.format("[target %s: %s]", t.target, t.verdict) end
  local rows = {}
  local function want(...)
    local t = target(...)
    rows[#rows + 1] = t
    return t
  end

  local tp = results.throughput
  local sdk, core_t = tp.sdk_get, tp.core
  local core_wrk = (core_t.rps and tp.wrk.rps) and core_t.rps / tp.wrk.rps or nil
  local function vs_wrk(id) return (tp[id].rps and tp.wrk.rps) and tp[id].rps / tp.wrk.rps or nil end
  local floor_wrk, floor_wrk_poll = vs_wrk("floor_libcurl"), vs_wrk("floor_libcurl_poll")
  local fc, fb = tp.floor_cjson, tp.floor_best
  local function pair(on_epoll, best, best_what)
    if not on_epoll then return nil end
    return string.format("%s on epoll; %s %s", fmt_x(on_epoll), fmt_x(best), best_what)
  end
  local t_node = want("SDK payments:get vs Node fetch", sdk.vs_node, function(v) return v >= 4 end, ">= 4x",
    fmt_x(sdk.vs_node), pair(fc.vs_node, fb.vs_node, "least+poll"))
  local t_curl = want("SDK payments:get vs curl --parallel", sdk.vs_curl, function(v) return v >= 1 end,
    ">= 1.0x", fmt_x(sdk.vs_curl), pair(fc.vs_curl, fb.vs_curl, "least+poll"))
  local t_wrk = want("core.request/step vs wrk", core_wrk, function(v) return v >= 0.6 end, ">= 0.6x",
    fmt_x(core_wrk), pair(floor_wrk, floor_wrk_poll, "on poll()"))
  local targets_of = {
    sdk_get = string.format("%s node %s, %s curl %s", t_node.target, t_node.verdict, t_curl.target, t_curl.verdict),
    core = string.format("%s wrk (%s) %s", t_wrk.target, fmt_x(core_wrk), t_wrk.verdict),
    floor_libcurl = floor_wrk and string.format("ceiling of core on libuv: %s wrk", fmt_x(floor_wrk)),
    floor_libcurl_poll = floor_wrk_poll and string.format("%s wrk", fmt_x(floor_wrk_poll)),
    floor_cjson = fc.vs_node and "ceiling of SDK on libuv",
  }
  p("")
  p("== 1. throughput: nginx on loopback serving the %s-byte ApiPublicPayment envelope, %s GETs, "
    .. "concurrency %d, median of %d", fmt_int(results.payload_bytes), fmt_int(N_GET), CONC, REPS)
  p("| %-44s | %9s | %13s | %18s | %-34s | %s", "client", "req/s", "vs Node fetch", "vs curl --parallel",
    "target (issue 12)", "runs (req/s)")
  p("|%s|%s|%s|%s|%s|%s", ("-"):rep(46), ("-"):rep(11), ("-"):rep(15), ("-"):rep(20), ("-"):rep(36),
    ("-"):rep(26))
  for _, c in ipairs(CLIENTS) do
    local t = tp[c.id]
    local runs = {}
    for i, r in ipairs(t.runs or {}) do runs[i] = fmt_int(r) end
    local extra = t.skipped and ("skipped: " .. t.skipped) or table.concat(runs, " / ")
    if (t.errors or 0) > 0 or t.failures then
      extra = extra .. string.format("  [%d errors, %d failed runs: %s]", t.errors or 0, t.failures or 0,
        tostring(t.first_error))
    end
    p("| %-44s | %9s | %13s | %18s | %-34s | %s", c.label, fmt_int(t.rps), fmt_x(t.vs_node), fmt_x(t.vs_curl),
      targets_of[c.id] or "", extra)
  end

  local b = results.batch
  local t_bsdk = want("batch via SDK vs bound", b.sdk.vs_bound, function(v) return v <= 1.2 end,
    "<= 1.2x", b.sdk.vs_bound and string.format("%.2fx (%.2f s)", b.sdk.vs_bound, b.sdk.seconds))
  local t_bscript = want("batch via auto_invoice.lua vs bound", b.script.vs_bound,
    function(v) return v <= 1.2 end, "<= 1.2x",
    b.script.vs_bound and string.format("%.2fx (%.2f s)", b.script.vs_bound, b.script.seconds))
  p("")
  p("== 2. batch: %s PUE payments:register, emulator latency %d ms, concurrency %d; bound %s x %.2f / %d = "
    .. "%.2f s", fmt_int(b.sales), b.latency_ms, CONC, fmt_int(b.sales), LATENCY_S, CONC, b.bound_s)
  local function batch_line(label, r, t)
    if r.error then p("  %-48s ERROR %s", label, r.error); return end
    p("  %-44s %7.2f s = %5.2fx bound %s  (%s registered, %d errors; emulator CPU %.1f s)%s", label,
      r.seconds, r.vs_bound, mark(t), fmt_int(r.registered), r.errors or 0, r.emulator_cpu_s or -1,
      r.first_error and ("  first error: " .. tostring(r.first_error)) or "")
  end
  batch_line("SDK, gigstack.map", b.sdk, t_bsdk)
  batch_line("scripts/auto_invoice.lua --concurrency " .. CONC, b.script, t_bscript)
  if b.script.output_tail then p("    script output: %s", (b.script.output_tail:gsub("\n", " | "))) end

  local inf, flat = results.inflight, results.rss_flat
  local t_wire = want("requests on the wire of 1,000 asked", inf.on_wire,
    function(v) return v == N_INFLIGHT end, "1,000", inf.on_wire and string.format("%s (%s queued)",
      fmt_int(inf.on_wire), fmt_int(inf.queued)))
  local floor_bytes
  for _, f in ipairs(inf.floor or {}) do
    if f.bytes_per_request and (not floor_bytes or f.bytes_per_request < floor_bytes) then
      floor_bytes = f.bytes_per_request
    end
  end
  local t_bytes = want("bytes per request in flight", inf.bytes_per_request,
    function(v) return v <= 8192 end, "<= 8 KB", inf.bytes_per_request
      and string.format("%.1f KB", inf.bytes_per_request / 1024),
    floor_bytes and string.format("%.1f KB libcurl alone", floor_bytes / 1024))
  local t_flat = want("RSS flat over " .. fmt_int(N_FLAT) .. " requests", flat.trend_pct,
    function(v) return v <= rss_trend.LIMIT_PCT end, string.format("<= %g %% trend", rss_trend.LIMIT_PCT),
    flat.trend and string.format("%+.1f %% (%+.0f kB/100k)", flat.trend_pct, flat.trend.slope_kb_per_100k))
  p("")
  p("== 3. memory")
  if inf.error then
    p("  in flight: ERROR %s", inf.error)
  else
    p("  %s requests asked at once (SDK gs:request, concurrency %s, answers held %s ms): on the wire %s, "
      .. "queued in the engine %s %s", fmt_int(inf.requests), fmt_int(inf.requests), fmt_int(inf.delay_ms),
      fmt_int(inf.on_wire), fmt_int(inf.queued), mark(t_wire))
    p("  VmRSS %s kB before -> %s kB with %s pending: %.1f KB per request in flight %s; all answered in %.2f s"
      .. " (%s errors)", fmt_int(inf.rss_before_kb), fmt_int(inf.rss_pending_kb), fmt_int(inf.requests),
      inf.bytes_per_request / 1024, mark(t_bytes), inf.all_answered_s, fmt_int(inf.errors))
    for _, f in ipairs(inf.floor or {}) do
      if f.error then
        p("  floor, libcurl alone, %s-byte buffer: ERROR %s", fmt_int(f.buffer), f.error)
      else
        p("  floor, libcurl alone in C (bench/floor/libcurl_pending.c), CURLOPT_BUFFERSIZE %s: %s on the wire, "
          .. "VmRSS %s -> %s kB = %.1f KB per request in flight", fmt_int(f.buffer), fmt_int(f.running),
          fmt_int(f.rss_before_kb), fmt_int(f.rss_pending_kb), f.bytes_per_request / 1024)
      end
    end
  end
  if flat.error then
    p("  RSS over %s requests: ERROR %s", fmt_int(N_FLAT), flat.error)
  else
    local s = {}
    for i, x in ipairs(flat.samples) do
      local at = x.requests % 1000 == 0 and (fmt_int(x.requests // 1000) .. "k") or fmt_int(x.requests)
      s[i] = at .. ":" .. fmt_int(x.rss_kb)
    end
    local tr = flat.trend
    p("  VmRSS (kB, after a full GC) over %s SDK payments:get (%.0f req/s, %d errors): %s; VmHWM %s kB",
      fmt_int(flat.requests), flat.rps, flat.errors, table.concat(s, "  "), fmt_int(flat.vmhwm_kb))
    p("  trend: least-squares slope %+.0f kB per 100k requests = %+.2f %% of the first sample over the %s "
      .. "requests sampled %s; last third vs first third %+.0f kB; samples within %.0f kB of the line; "
      .. "highest sample %+.1f %% over the first (not judged: noise)", tr.slope_kb_per_100k, tr.trend_pct,
      fmt_int(tr.span_requests), mark(t_flat), tr.end_delta_kb, tr.spread_kb, flat.max_over_first_pct)
  end

  local st = results.startup
  local t_start = want("start-up vs node -e ''", st.ratio, function(v) return v <= 0.1 end, "<= 0.1x",
    st.ratio and string.format("%.2fx (%.1f / %.1f ms)", st.ratio, st.gigstack_run_s * 1000, st.node_s * 1000))
  p("")
  p("== 4. start-up (%s)", st.tool or st.skipped or "")
  if st.ratio then
    p("  gigstack-run -e ''  %6.1f ms = %.2fx node %s", st.gigstack_run_s * 1000, st.ratio, mark(t_start))
    p("  node -e ''          %6.1f ms  (%s)", st.node_s * 1000, st.node_version)
    if st.with_libcurl_s then
      p("  gigstack-run -e '' with libcurl opened (a first request's extra cost) %6.1f ms = %.2fx node",
        st.with_libcurl_s * 1000, st.with_libcurl_s / st.node_s)
    end
  elseif st.error then
    p("  ERROR %s", st.error)
  end

  local em = results.emulator
  if em.error then em.skipped = em.error end
  local ef = em.floor or {}
  local t_emu = want("emulator register vs ping", em.ratio, function(v) return v >= 0.4 end, ">= 0.4x",
    fmt_x(em.ratio), ef.ratio and fmt_x(ef.ratio) .. " decode+encode only")
  p("")
  p("== 5. emulator under wrk (1 thread, %d connections, %d s each)", CONC, EMU_WRK_SECONDS)
  if em.skipped then
    p("  not measured: %s", em.skipped)
  else
    p("  GET  /v2/ping               %9s req/s  (%d non-2xx)", fmt_int(em.ping.rps), em.ping.errors or 0)
    p("  POST /v2/payments/register  %9s req/s  (%d non-2xx) = %s ping %s", fmt_int(em.register.rps),
      em.register.errors or 0, fmt_x(em.ratio), mark(t_emu))
    if ef.ping then
      p("  floor (bench/floor/register_floor.lua: the same server, a register that only decodes its body and "
        .. "encodes one fixed payment):")
      p("  GET  /v2/ping               %9s req/s  (%d non-2xx)", fmt_int(ef.ping.rps), ef.ping.errors or 0)
      p("  POST /v2/payments/register  %9s req/s  (%d non-2xx) = %s ping", fmt_int(ef.register.rps),
        ef.register.errors or 0, fmt_x(ef.ratio))
    end
  end

  p("")
  p("== targets (issue 12)")
  p("| %-42s | %-26s | %-14s | %-7s | %s", "target", "measured", "wanted", "verdict",
    "floor: nothing of ours in the way")
  p("|%s|%s|%s|%s|%s", ("-"):rep(44), ("-"):rep(28), ("-"):rep(16), ("-"):rep(9), ("-"):rep(34))
  local pass, fail = 0, 0
  for _, t in ipairs(rows) do
    p("| %-42s | %-26s | %-14s | %-7s | %s", t.name, t.figure or "-", t.target, t.verdict, t.floor or "")
    if t.verdict == "PASS" then pass = pass + 1 elseif t.verdict == "FAIL" then fail = fail + 1 end
  end
  results.pass, results.fail = pass, fail
  results.seconds = (core.now() - T_START) / 1000
  p("")
  p("%d PASS, %d FAIL (the bench reports, it does not fail the build); %.0f s; results in %s/results.json, "
    .. "chart in %s/throughput.png", pass, fail, results.seconds, OUT, OUT)
  for _, n in ipairs(notes) do p("note: %s", n) end
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------- JSON, chart

--- JSON with sorted keys and indentation, for a results file people read.
local function encode(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "table" then
    local inner = indent .. "  "
    if #v > 0 or next(v) == nil then
      if next(v) == nil then return "[]" end
      local parts = {}
      for i, x in ipairs(v) do parts[i] = inner .. encode(x, inner) end
      return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = inner .. cjson.encode(k) .. ": " .. encode(v[k], inner) end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.6g", v)
  elseif t == "string" or t == "boolean" then
    return (cjson.encode(v):gsub("\\/", "/"))   -- cjson writes "/" as "\/"
  end
  return "null"
end

local function chart()
  if not HAVE_GNUPLOT then note("no chart: gnuplot not installed (Debian: gnuplot-nox)"); return end
  local rows = {}
  for _, c in ipairs(CLIENTS) do
    local t = results.throughput[c.id]
    local group = (c.id == "wrk" or c.id == "curl_parallel" or c.id == "node_fetch" or c.id == "aiohttp"
      or c.id:match("^floor_")) and 2 or 1
    if t.rps then rows[#rows + 1] = string.format("%q %.0f %d", c.label, t.rps, group) end
  end
  local dat = OUT .. "/throughput.dat"
  write_file(dat, table.concat(rows, "\n") .. "\n")
  local title = string.format("GET of a %d-byte payment envelope from nginx on loopback, concurrency %d, "
    .. "median of %d (%s)", results.payload_bytes or 0, CONC, REPS, results.git)
  local out, ok = sh(string.format("gnuplot -e %s bench/throughput.gp 2>&1",
    q(string.format("datafile='%s'; outfile='%s'; charttitle='%s'", dat, OUT .. "/throughput.png", title))))
  if not ok then note("gnuplot failed: %s", out:sub(1, 200)) end
end

-- ---------------------------------------------------------------- main

--- Run one section; a failure is reported and the next section runs.
local function guarded(name, fn, ...)
  local ok, err = xpcall(fn, debug.traceback, ...)
  if not ok then note("%s could not run: %s", name, tostring(err)) end
  return ok
end

local function main()
  if not read_file(RUN) then error(RUN .. " not built (make all)") end
  if NGINX then
    local ok, base = xpcall(nginx_start, debug.traceback)
    if ok then
      guarded("throughput", section_throughput, base)
      guarded("RSS over many requests", section_flat, base)
    else
      note("nginx did not start: %s", tostring(base))
    end
    nginx_stop()
  else
    note("throughput and RSS sections skipped: nginx not installed (make bench-deps)")
  end
  guarded("in flight", section_inflight)
  guarded("batch", section_batch)
  guarded("start-up", section_startup)
  guarded("emulator under wrk", section_emulator_wrk)
end

--- Stop what an interrupted run left: emulators (checked by their command
-- line, never a recycled pid) and nginx (by its prefix).
local function cleanup()
  local text = read_file(RUNNING)
  if not text then return end
  for pid in text:gmatch("pid (%d+)") do
    local cmdline = (read_file("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " ")
    if cmdline:find("--serve-mock", 1, true) or cmdline:find("register_floor.lua", 1, true) then
      children[tonumber(pid)] = true
      stop(tonumber(pid))
    end
  end
  for prefix in text:gmatch("nginx (/tmp/gigstack%-bench%.[%w]+)") do
    if read_file(prefix .. "/nginx.conf") then
      nginx_prefix = prefix
      nginx_stop()
    end
  end
  os.remove(RUNNING)
end

os.execute("mkdir -p " .. q(OUT))
cleanup()
if arg[1] == "--cleanup" then os.exit(0) end

local ok, err = xpcall(main, debug.traceback)
for pid in pairs(children) do stop(pid) end
nginx_stop()
os.remove(RUNNING)
if not ok then
  io.stderr:write("bench: could not run: ", tostring(err), "\n")
  os.exit(1)
end
chart()
local text = report()
write_file(OUT .. "/results.json", encode(results) .. "\n")
print(text)
