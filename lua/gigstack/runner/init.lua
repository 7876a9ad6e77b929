--- gigstack-run's Lua side: options, the emulator for --mock and
-- --serve-mock, running the script as a task, exit codes
-- (0 ok, 1 script error, 2 usage error, 3 items failed, 4 locked,
-- 130/143 signals; documented in man/gigstack-run.1).
local client = require "gigstack.client"
local sched = require "gigstack.async.sched"

local M = {}
local journal_ops, journal_summary, lock_held

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
  -e CODE                run CODE before the script
  -v, --version          print versions and exit
  -h, --help             print this help and exit
Exit codes: 0 all done, 1 script error, 2 usage or configuration error,
3 some items or jobs failed, 4 lock held by another run,
130/143 stopped by SIGINT/SIGTERM.
Environment: GIGSTACK_API_KEY, GIGSTACK_BASE_URL, GIGSTACK_JOURNAL_URL.
See gigstack-run(1).
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
    elseif a == "--once" then o.once = true
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

local function serve(o)
  local code = 0
  local ok, err = pcall(sched.run, function()
    local server = start_mock(o, o.serve)
    io.stdout:write(server.base_url, "\n")
    io.stdout:write("API key: ", server.api_key, "  (Ctrl-C stops)\n")
    io.stdout:flush()
    local stop = {}
    local tokens = {}
    for _, sig in ipairs{ "SIGINT", "SIGTERM" } do
      tokens[#tokens + 1] = sched.on_signal(sig, function() stop.now = true end)
    end
    while not stop.now do sched.sleep(0.1) end
    for _, t in ipairs(tokens) do sched.off_signal(t) end
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

-- gigstack-run journal status|prune|unlock
journal_ops = function(ops, journal)
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
journal_summary = function(journal)
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
  local o, err = parse(argv)
  if not o then return usage_error(err) end
  if o.help then io.stdout:write(USAGE); return 0 end
  if o.version then
    local core = require "gigstack.core"
    io.stdout:write(string.format("gigstack-run %s (%s, libcurl %s, libuv %s)\n",
      client.VERSION, _VERSION, core.curl_version, core.uv_version))
    return 0
  end
  if o.serve then return serve(o) end
  local journal = require "gigstack.runner.journal"
  if o.journal then journal.location = o.journal end
  if o.lease then journal.lease = o.lease end
  if o.ops then return journal_ops(o.ops, journal) end
  if not o.script and #o.chunks == 0 then return usage_error("no script given") end

  -- --lock: with a PostgreSQL journal an advisory lock (taken in the run's
  -- loop below), else a file lock
  local loc = journal.configured()
  local pg_lock = o.lock and loc and journal.backend(loc) == "postgres"
  if o.lock and not pg_lock then
    local locked, lerr = require("gigstack.core").lock(o.lock)
    if not locked then io.stderr:write("gigstack-run: ", lerr, "\n"); return 4 end
  end
  local lock_refused, lock_lost
  if o.log_format then require("gigstack.runner.log").format = o.log_format end
  local tty = os.execute("test -t 2") == true
  require("gigstack.runner.report").progress = tty
  if o.dry_run then
    client.defaults.dry_run = function(method, path, body)
      require("gigstack.runner.log").event("dry_run.write", { method = method, path = path, body = body })
    end
  end
  if o.once then require("gigstack.runner.schedule").once = true end

  local main
  if o.script then
    local fn, lerr = loadfile(o.script ~= "-" and o.script or nil)
    if not fn then io.stderr:write("gigstack-run: ", lerr, "\n"); return 1 end
    main = fn
  end
  local arg = { [0] = o.script or "-e" }
  for i, v in ipairs(o.args) do arg[i] = v end
  _G.arg = arg   -- like lua5.4: scripts read their arguments from `arg`

  -- SIGINT/SIGTERM: start no new request, let those in flight finish
  -- within the grace period, then stop; exit 128 + signal number.
  local signalled
  local tokens = {}
  client.defaults.stopping = function() return signalled end
  local function on_stop(ev)
    if signalled then return end
    signalled = ev.signal
    require("gigstack.runner.schedule").stop_all()
    require("gigstack.runner.webhooks").stop()
    local grace = o.grace or 10
    io.stderr:write(string.format("gigstack-run: %s: starting no new requests; %d in flight, "
      .. "%g s to finish\n", ev.signal, (require("gigstack.core").stats()), grace))
    sched.sleep(grace)
    io.stderr:write("gigstack-run: grace period over, stopping\n")
    sched.interrupt("interrupted by " .. ev.signal)
  end
  for _, sig in ipairs{ "SIGINT", "SIGTERM" } do tokens[#tokens + 1] = sched.on_signal(sig, on_stop) end

  local ok, rerr = xpcall(sched.run, function(e)
    if type(e) == "string" and e:find("\nstack traceback:", 1, true) then return e end
    return debug.traceback(tostring(e), 2)
  end, function()
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
        require("gigstack.runner.schedule").stop_all()
      end)
    end
    local server
    if o.mock then
      server = start_mock(o)
      client.defaults.base_url = server.base_url
      client.defaults.api_key = server.api_key
      client.defaults.mock = server
    end
    for _, code in ipairs(o.chunks) do
      local fn, cerr = load(code, "=(command line)")
      if not fn then error(cerr, 0) end
      fn()
    end
    local ok_main, merr = xpcall(function() if main then main(table.unpack(o.args)) end end,
      debug.traceback)
    if server then
      server.close()
      if o.state_file then assert(server.emulator:save()) end   -- saved even after a script error
    end
    if not ok_main then error(merr, 0) end
  end)
  for _, t in ipairs(tokens) do sched.off_signal(t) end
  if lock_held then
    pcall(sched.run, lock_held.release, { timeout = 10 })
  end
  if lock_refused then io.stderr:write("gigstack-run: ", lock_refused, "\n"); return 4 end
  journal_summary(journal)
  local report = require "gigstack.runner.report"
  if #report.items > 0 then
    local log = require "gigstack.runner.log"
    if log.format == "json" or (not log.format and not report.progress) then
      local fields = { items = #report.items }
      for k, v in pairs(report.counts()) do fields[k] = v end
      log.event("run.summary", fields)       -- JSON lines stay JSON lines
    else
      if report.progress then io.stderr:write("\n") end
      io.stderr:write(table.concat(report.summary(), "\n"), "\n")
    end
  end
  if o.report then
    local wok, werr = report.write(o.report)
    if not wok then io.stderr:write("gigstack-run: cannot write report: ", tostring(werr), "\n") end
  end
  if signalled then return signalled == "SIGINT" and 130 or 143 end
  if lock_lost then return 4 end
  if not ok then
    io.stderr:write("gigstack-run: ", require("gigstack.async.errors").scrub(tostring(rerr)), "\n")
    return 1
  end
  if sched.failures > 0 then return 1 end
  if (report.counts().failed or 0) > 0 then return 3 end
  return 0
end

return M
