--- gigstack-run's Lua side: options, the emulator for --mock and
-- --serve-mock, running the script as a task, exit codes a scheduler
-- can trust (see EXIT below; documented in man/gigstack-run.1).
local client = require "gigstack.client"
local sched = require "gigstack.async.sched"
local errors = require "gigstack.async.errors"

local M = {}
local lock_held

local USAGE = [==[
usage: gigstack-run [options] [script.lua [args...]]
or:    gigstack-run --journal postgres://... journal status [--batch NAME]
or:    gigstack-run --journal postgres://... journal prune --older-than DAYS
or:    gigstack-run --journal postgres://... journal unlock KEY|--expired|--owner OWNER
  --mock                 start the gigstack emulator on a loopback port and
                         point gigstack.new{} at it (no API key needed)
  --serve-mock [HOST:]PORT
                         run the emulator alone until SIGINT/SIGTERM and
                         print its base URL (PORT 0 picks a free port)
  --mock-latency MS[-MS], --latency MS[-MS]
                         add latency to every emulator answer
  --faults SPEC          inject faults into emulator answers, e.g.
                         "429=0.05,503=0.05,reset_before=0.03,reset_after=0.03,stall=0.01"
                         kinds: 429 500 502 503 504 html empty reset_before
                         reset_after stall truncate
  --seed N               seed for the fault and latency draws (deterministic)
  --mock-state FILE      emulator state: loaded from FILE when it exists,
                         saved to it when the run ends (implies --mock)
  --grace SECONDS        on SIGINT/SIGTERM, wait this long for requests in
                         flight (default 10), then stop
  --once                 run the script's schedules that are due this minute,
                         then exit (for system cron)
  --lock FILE|NAME       refuse to start while another run holds the lock:
                         a file lock, or with a PostgreSQL journal an
                         advisory lock NAME shared by every machine (a lost
                         database connection stops the run, exit 4)
  --journal LOCATION     the run's journal: FILE or sqlite:FILE (SQLite), or
                         postgres://... (shared by runners on several
                         machines); schedules then run each tick once
  --lease SECONDS        how long a claim holds without renewal (default 600)
  --dry-run              perform reads; log writes (method, path, body) and
                         send none
  --report FILE          write each item's outcome to FILE (.json or .csv)
  --log-format FMT       text or json (default: text on a terminal)
  --profile NAME         the gigstack CLI profile to take the key from
                         (~/.config/gigstack/credentials.json)
  --debug                print tracebacks with errors (also GIGSTACK_DEBUG=1)
  --keep-key-env         leave GIGSTACK_API_KEY in the environment of the
                         commands the script starts (default: taken out)
  -e CODE                run CODE before the script
  -v, --version          print versions and exit
  -h, --help             print this help and exit
Exit codes:
  0    everything done
  1    script error (also a task that failed and nobody waited for)
  2    usage or configuration error: bad option, no API key, --report or
       --lock path not writable (checked before any request)
  3    some items or scheduled jobs failed (a --once job that raised too)
  4    --lock held by another run
  130  stopped by SIGINT, 143 by SIGTERM
Environment: GIGSTACK_API_KEY, GIGSTACK_PROFILE, GIGSTACK_BASE_URL,
GIGSTACK_WEBHOOK_URL, GIGSTACK_JOURNAL_URL, GIGSTACK_DEBUG, GIGSTACK_LUA_DIR. Keys: api_key,
then GIGSTACK_API_KEY, then the credentials.json of the gigstack CLI
(must not be readable by others); with --mock the emulator's key wins.
]==]

local function usage_error(msg)
  io.stderr:write("gigstack-run: ", msg, "\n", USAGE)
  return 2
end

local function parse(argv)
  local o = { chunks = {}, args = {} }
  local i = 1
  while argv[i] do
    local a = argv[i]
    if a == "--mock" then o.mock = true
    elseif a == "--serve-mock" then
      i = i + 1
      local spec = argv[i]
      if not spec then return nil, "--serve-mock needs [HOST:]PORT" end
      local host, port = spec:match("^(.*):(%d+)$")
      if not host then host, port = "127.0.0.1", spec:match("^(%d+)$") end
      port = tonumber(port)
      if not port or port > 65535 then return nil, "--serve-mock: bad port in " .. spec end
      o.serve = { host = host ~= "" and host or "127.0.0.1", port = port }
    elseif a == "--faults" then
      i = i + 1
      local rates, ferr = require("gigstack.mock.faults").parse(argv[i] or "")
      if not argv[i] or not rates then return nil, "--faults: " .. (ferr or "needs a SPEC") end
      o.faults = rates
    elseif a == "--mock-state" then
      i = i + 1
      if not argv[i] then return nil, "--mock-state needs a FILE" end
      o.state_file = argv[i]
      o.mock = true
    elseif a == "--once" then o.once = true
    elseif a == "--debug" then o.debug = true
    elseif a == "--journal" then
      i = i + 1
      if not argv[i] or argv[i] == "" then return nil, "--journal needs FILE, sqlite:FILE or postgres://..." end
      o.journal = argv[i]
    elseif a == "--lease" then
      i = i + 1
      o.lease = tonumber(argv[i] or "")
      if not o.lease or o.lease <= 0 then return nil, "--lease needs a number of seconds > 0" end
    elseif a == "journal" and not o.script then
      o.ops = { command = argv[i + 1] }
      local j = i + 2
      while argv[j] do
        local b = argv[j]
        if b == "--batch" or b == "--owner" or b == "--older-than" then
          if not argv[j + 1] then return nil, "journal: " .. b .. " needs a value" end
          o.ops[b:sub(3):gsub("%-", "_")] = argv[j + 1]
          j = j + 1
        elseif b == "--expired" then o.ops.expired = true
        elseif b:sub(1, 1) ~= "-" and not o.ops.key then o.ops.key = b
        else return nil, "journal: unknown argument " .. b end
        j = j + 1
      end
      return o
    elseif a == "--keep-key-env" then o.keep_key_env = true
    elseif a == "--profile" then
      i = i + 1
      if not argv[i] or argv[i] == "" then return nil, "--profile needs a NAME" end
      o.profile = argv[i]
    elseif a == "--dry-run" then o.dry_run = true
    elseif a == "--lock" or a == "--report" or a == "--log-format" then
      i = i + 1
      if not argv[i] then return nil, a .. " needs a value" end
      o[a:sub(3):gsub("%-", "_")] = argv[i]
      if a == "--log-format" and argv[i] ~= "text" and argv[i] ~= "json" then
        return nil, "--log-format must be text or json"
      end
    elseif a == "--seed" then
      i = i + 1
      o.seed = math.tointeger(tonumber(argv[i] or ""))
      if not o.seed then return nil, "--seed needs an integer" end
    elseif a == "--grace" then
      i = i + 1
      o.grace = tonumber(argv[i] or "")
      if not o.grace or o.grace < 0 then return nil, "--grace needs a number of seconds" end
    elseif a == "--mock-latency" or a == "--latency" then
      i = i + 1
      local lo, hi = (argv[i] or ""):match("^(%d+)%-?(%d*)m?s?$")
      if not lo then return nil, "--mock-latency needs MS or MS-MS" end
      o.latency = { tonumber(lo) / 1000, tonumber(hi ~= "" and hi or lo) / 1000 }
    elseif a == "-e" then
      i = i + 1
      if not argv[i] then return nil, "-e needs an argument" end
      o.chunks[#o.chunks + 1] = argv[i]
    elseif a == "-v" or a == "--version" then o.version = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a == "--" then
      o.script = argv[i + 1]
      i = i + 1
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      o.script = a
      break
    end
    i = i + 1
  end
  for j = i + 1, #argv do o.args[#o.args + 1] = argv[j] end
  return o
end

local function start_mock(o, where)
  local mock = require "gigstack.mock"
  local server = assert(mock.start{ host = where and where.host, port = where and where.port or 0,
    latency = o.latency, faults = o.faults, fault_seed = o.seed, rng_seed = o.seed,
    state_file = o.state_file, examples = true })
  return server
end

--- The collector's pause for --serve-mock (Lua's default is 200: a cycle
-- starts when the heap has doubled since the last one). The emulator
-- alone shares its Lua state with no user script, and what it keeps (each
-- register about 9 KB: the payment, its invoice, three event snapshots)
-- only grows, so every cycle re-marks all of it: at 400 a cycle starts
-- when the heap is four times what the last one kept, half as many
-- cycles. Measured under wrk (bench/run.lua's emulator pair, ~20,000
-- registers in 3 s): about 130 instead of 162 us of emulator CPU per
-- register; the cost is memory, a resident size of about 420 MB instead
-- of 250 MB after those registers (up to 4x the live heap instead of 2x).
-- --mock keeps the default: there the state is the user's script's too.
M.SERVE_GC_PAUSE = 400

--- Tune the collector for --serve-mock; returns the pause it replaced.
function M.serve_gc()
  return collectgarbage("setpause", M.SERVE_GC_PAUSE)
end

--- Suspend the calling task until SIGINT or SIGTERM arrives (a server
-- that runs until it is told to stop: --serve-mock, bench's floor).
function M.until_stopped()
  local stop = {}
  local tokens = {}
  for _, sig in ipairs{ "SIGINT", "SIGTERM" } do
    tokens[#tokens + 1] = sched.on_signal(sig, function() stop.now = true end)
  end
  while not stop.now do sched.sleep(0.1) end
  for _, t in ipairs(tokens) do sched.off_signal(t) end
end

local function serve(o)
  local code = 0
  M.serve_gc()
  local ok, err = pcall(sched.run, function()
    local server = start_mock(o, o.serve)
    io.stdout:write(server.base_url, "\n")
    io.stdout:write("API key: ", server.api_key, "  (Ctrl-C stops)\n")
    io.stdout:flush()
    M.until_stopped()
    server.close()
    if o.state_file then assert(server.emulator:save()) end
    io.stderr:write("gigstack-run: emulator stopped after ",
      server.emulator.requests, " requests\n")
  end)
  if not ok then
    io.stderr:write("gigstack-run: ", tostring(err), "\n")
    code = 1
  end
  return code
end

-- Can FILE be written? Checked before the run so that a bad --report
-- path costs no request. An existing file is opened for update (not
-- truncated); a new one is created and removed.
local function writable(path)
  local f = io.open(path, "r+b")
  if f then f:close(); return true end
  local g, err = io.open(path, "ab")
  if not g then return nil, err end
  g:close()
  os.remove(path)
  return true
end

local EXIT = { ok = 0, script = 1, config = 2, failed = 3, locked = 4 }

-- Like lua5.4: LUA_INIT_5_4 or LUA_INIT ("@file" or code) runs first
-- (make coverage loads its line counter this way).
local function lua_init()
  local init = os.getenv("LUA_INIT_5_4") or os.getenv("LUA_INIT")
  if not init or init == "" then return true end
  local fn, err
  if init:sub(1, 1) == "@" then fn, err = loadfile(init:sub(2)) else fn, err = load(init, "=LUA_INIT") end
  if not fn then return nil, err end
  local ok, rerr = pcall(fn)
  if not ok then return nil, tostring(rerr) end
  return true
end

-- gigstack-run journal status|prune|unlock
local function journal_ops(ops, journal)
  local loc = journal.configured()
  if not loc then return usage_error("journal " .. tostring(ops.command) .. ": no journal (--journal or "
    .. "GIGSTACK_JOURNAL_URL)") end
  local kind, where = journal.backend(loc)
  if kind ~= "postgres" then
    io.stderr:write("gigstack-run: journal ", tostring(ops.command), ": only for PostgreSQL journals\n")
    return 2
  end
  local ok, lines = pcall(sched.run, function()
    return require("gigstack.runner.journal_pg").ops(where, ops.command, ops)
  end, { timeout = 60 })
  if not ok then io.stderr:write("gigstack-run: ", tostring(lines), "\n"); return 1 end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return 0
end

-- claims taken, lost and retried, per journal the run opened
local function journal_summary(journal)
  local log = require "gigstack.runner.log"
  for _, j in ipairs(journal.opened) do
    local m = j:metrics()
    if m.taken + m.skipped > 0 then
      local fields = { journal = j.backend, taken = m.taken, ran = m.ran, skipped = m.skipped,
        retried = m.retried, lost = m.lost, waited = m.waited, reconnects = m.reconnects }
      if log.format == "json" then
        log.event("journal.summary", fields)
      else
        io.stderr:write(string.format("journal (%s): %d claims taken, %d lost, %d retried; %d ran, "
          .. "%d already done, %d waited, %d reconnects\n", j.backend, m.taken, m.lost, m.retried, m.ran,
          m.skipped, m.waited, m.reconnects))
      end
    end
  end
end

function M.main(argv)
  local iok, ierr = lua_init()
  if not iok then io.stderr:write("gigstack-run: LUA_INIT: ", ierr, "\n"); return 1 end
  local o, err = parse(argv)
  if not o then return usage_error(err) end
  if o.help then io.stdout:write(USAGE); return 0 end
  if o.version then
    local core = require "gigstack.core"
    io.stdout:write(string.format("gigstack-run %s (%s, libcurl %s, libuv %s)\n",
      client.VERSION, _VERSION, core.curl_version() or "not found", core.uv_version))
    return 0
  end
  if o.serve then return serve(o) end
  local journal = require "gigstack.runner.journal"
  if o.journal then journal.location = o.journal end
  if o.lease then journal.lease = o.lease end
  if o.ops then return journal_ops(o.ops, journal) end
  if not o.script and #o.chunks == 0 then return usage_error("no script given") end
  local log = require "gigstack.runner.log"
  if o.debug then log.debug = true end
  local function config_fail(msg)
    io.stderr:write("gigstack-run: ", msg, "\n")
    return EXIT.config
  end

  if o.report then
    local wok, werr = writable(o.report)
    if not wok then return config_fail("--report: cannot write " .. tostring(werr)) end
  end
  -- --lock: with a PostgreSQL journal an advisory lock (taken in the run's
  -- loop below), else a file lock
  local loc = journal.configured()
  local pg_lock = o.lock and loc and journal.backend(loc) == "postgres"
  if o.lock and not pg_lock then
    local locked, lerr, busy = require("gigstack.core").lock(o.lock)
    if not locked then
      io.stderr:write("gigstack-run: ", lerr, "\n")
      return busy and EXIT.locked or EXIT.config
    end
  end
  local lock_refused, lock_lost
  if o.log_format then log.format = o.log_format end
  if o.profile then client.defaults.profile = o.profile end
  -- the key stays with this process: commands the script starts with
  -- os.execute or io.popen do not inherit it unless asked
  local env_key = os.getenv("GIGSTACK_API_KEY")
  if env_key and not o.keep_key_env then
    client.defaults.env_api_key = env_key
    require("gigstack.core").unsetenv("GIGSTACK_API_KEY")
  end
  local tty = require("gigstack.core").isatty(2)
  require("gigstack.runner.report").progress = tty
  if o.dry_run then
    client.defaults.dry_run = function(method, path, body)
      log.event("dry_run.write", { method = method, path = path, body = body })
    end
  end
  local schedule = require "gigstack.runner.schedule"
  local webhooks = require "gigstack.runner.webhooks"
  if o.once then
    schedule.once = true
    webhooks.keep_alive = false    -- --once: listeners do not hold the run open
  end

  local main
  if o.script then
    local fn, lerr = loadfile(o.script ~= "-" and o.script or nil)
    if not fn then io.stderr:write("gigstack-run: ", lerr, "\n"); return EXIT.script end
    main = fn
  end
  local arg = { [0] = o.script or "-e" }
  for i, v in ipairs(o.args) do arg[i] = v end
  _G.arg = arg   -- like lua5.4: scripts read their arguments from `arg`

  -- The emulator starts before the script and closes after the loop:
  -- it serves schedules, listeners, --once jobs and the grace period.
  local server
  if o.mock then
    local ok_mock, mock_or_err = pcall(start_mock, o)
    if not ok_mock then return config_fail("--mock: " .. log.describe(mock_or_err)) end
    server = mock_or_err
    client.defaults.base_url = server.base_url
    client.defaults.api_key = server.api_key
    client.defaults.pinned = true      -- the emulator's key beats GIGSTACK_API_KEY
    client.defaults.mock = server
    for _, var in ipairs{ "GIGSTACK_API_KEY", "GIGSTACK_BASE_URL" } do
      local v = os.getenv(var) or (var == "GIGSTACK_API_KEY" and env_key or nil)
      if v and v ~= "" then
        log.event("mock.env_ignored", { variable = var,
          message = "--mock: " .. var .. " is set and ignored; using the emulator's" }, "warn")
      end
    end
  end

  -- A task that fails with nobody waiting for it: one line (exit 1).
  sched.on_failure = function(task)
    log.failure("task.failed", task.err, task.traceback)
  end

  -- SIGINT/SIGTERM: start no new request, let those in flight finish
  -- within the grace period, then stop; exit 128 + signal number.
  local signalled
  local tokens = {}
  client.defaults.stopping = function() return signalled end
  local function on_stop(ev)
    if signalled then return end
    signalled = ev.signal
    schedule.stop_all()
    webhooks.stop()
    local grace = o.grace or 10
    io.stderr:write(string.format("gigstack-run: %s: starting no new requests; %d in flight, "
      .. "%g s to finish\n", ev.signal, (require("gigstack.core").stats()), grace))
    sched.sleep(grace)
    io.stderr:write("gigstack-run: grace period over, stopping\n")
    sched.interrupt("interrupted by " .. ev.signal)
  end
  for _, sig in ipairs{ "SIGINT", "SIGTERM" } do tokens[#tokens + 1] = sched.on_signal(sig, on_stop) end

  local failure    -- {err, traceback} of the script (or a -e chunk)
  local function catch(e)
    failure = { err = e, traceback = debug.traceback(log.describe(e), 2) }
    return e
  end
  local ok, rerr = pcall(sched.run, function()
    if pg_lock then
      local lk, lerr = require("gigstack.runner.journal_pg").lock(select(2, journal.backend(loc)), o.lock)
      if not lk then lock_refused = lerr; return end
      lock_held = lk
      -- a lost connection has released the lock: another machine may take
      -- it now, so this run starts no new work
      lk.watch(function(reason)
        lock_lost = reason
        io.stderr:write("gigstack-run: lock ", o.lock, " lost (", reason, "): starting no new work\n")
        journal.stop("lock " .. o.lock .. " lost")
        client.defaults.stopping = function() return "lock " .. o.lock .. " lost" end
        schedule.stop_all()
      end)
    end
    for _, code in ipairs(o.chunks) do
      local fn, cerr = load(code, "=(command line)")
      if not fn then error(cerr, 0) end
      if not xpcall(fn, catch) then return end
    end
    if main then xpcall(main, catch, table.unpack(o.args)) end
  end)
  for _, t in ipairs(tokens) do sched.off_signal(t) end
  webhooks.stop()
  if lock_held then
    local rok, rel = pcall(sched.run, lock_held.release, { timeout = 10 })
    if not rok then io.stderr:write("gigstack-run: lock release: ", tostring(rel), "\n") end
  end
  if server then
    server.close()
    if o.state_file then   -- saved even after a script error
      local sok, serr = server.emulator:save()
      if not sok then io.stderr:write("gigstack-run: --mock-state: ", tostring(serr), "\n") end
    end
  end

  if lock_refused then io.stderr:write("gigstack-run: ", lock_refused, "\n"); return EXIT.locked end
  journal_summary(journal)

  local report = require "gigstack.runner.report"
  if #report.items > 0 then
    if log.resolve() == "json" then
      local fields = { items = #report.items }
      for k, v in pairs(report.counts()) do fields[k] = v end
      log.event("run.summary", fields)       -- JSON lines stay JSON lines
    else
      if report.progress then io.stderr:write("\n") end
      io.stderr:write(table.concat(report.summary(), "\n"), "\n")
    end
  end
  local code = EXIT.ok
  if not ok and not signalled then failure = failure or { err = rerr } end
  if failure and not signalled then
    if log.resolve() == "json" then
      log.failure("run.failed", failure.err, failure.traceback)
    else
      io.stderr:write("gigstack-run: ", log.describe(failure.err), "\n")
      if log.debug and failure.traceback then io.stderr:write(failure.traceback, "\n") end
    end
    code = (errors.is(failure.err) and failure.err.kind == "config") and EXIT.config or EXIT.script
  elseif sched.failures > 0 then
    code = EXIT.script
  elseif (report.counts().failed or 0) > 0 or schedule.failures() > 0 then
    code = EXIT.failed
  end
  if o.report then
    local wok, werr = report.write(o.report)
    if not wok then
      io.stderr:write("gigstack-run: cannot write report: ", tostring(werr), "\n")
      if code == EXIT.ok then code = EXIT.script end
    end
  end
  if signalled then return signalled == "SIGINT" and 130 or 143 end
  if lock_lost then return EXIT.locked end
  return code
end

return M
