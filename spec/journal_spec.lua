-- The journal's exactly-once semantics, one spec for both backends:
-- SQLite (a file, one machine) and PostgreSQL (runners on several
-- machines; a real server, started by spec/pg_support.lua). Then what only
-- a shared database gives: a lock that is lost with its connection, a
-- restart in the middle of a batch, the operations commands.
local gigstack = require "gigstack"
local journal = require "gigstack.runner.journal"
local json = require "gigstack.async.json"
local support = require "support"
local pg = require "pg_support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

local tmpfile, read = support.tmpfile, support.read_file

local write = support.write_file

local function lines(path)
  local out = {}
  for l in read(path):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- a unique prefix per test, so the tests share one database
local seq = 0
local function uniq(what)
  seq = seq + 1
  return string.format("%s-%d-%d", what, os.time(), seq)
end

--- Wait for cond() up to `seconds`, polling the files/processes it reads.
local function wait_for(cond, what, seconds)
  local deadline = os.time() + (seconds or 30)
  while os.time() <= deadline do
    if cond() then return end
    os.execute("sleep 0.05")
  end
  error("timed out waiting for " .. what)
end

--- Start a shell command in the background, its output in `out`.
-- Returns its pid and a file that receives its exit code. With exec, the
-- pid is the command's own (no exit code file).
local function spawn(cmd, out, exec)
  local script, pidf, rc = tmpfile(), tmpfile(), tmpfile()
  write(script, "echo $$ > " .. pidf .. "\n" .. (exec and ("exec " .. cmd .. " >" .. out .. " 2>&1\n")
    or (cmd .. " >" .. out .. " 2>&1\necho $? > " .. rc .. "\n")))
  assert(os.execute("sh " .. script .. " </dev/null >/dev/null 2>&1 &"))
  wait_for(function() return read(pidf):match("%d") ~= nil end, "a process to start")
  local pid = tonumber(read(pidf):match("%d+"))
  os.remove(pidf)
  return pid, rc
end

--- Wait for a spawned command's exit code.
local function wait_rc(rc, seconds)
  wait_for(function() return read(rc):match("%d") ~= nil end, "a runner to exit", seconds or 60)
  return tonumber(read(rc):match("%d+"))
end

--- N sales from the sample rows, ids PREFIX-00001 ... (one item each)
local function sales_csv(n, prefix)
  local rows = lines("scripts/data/sales.csv")
  local out = { rows[1] }
  for i = 1, n do
    local r = rows[(i - 1) % (#rows - 1) + 2]
    out[#out + 1] = string.format("%s-%05d", prefix, i) .. r:match("^[^,]*(,.*)$")
  end
  local path = tmpfile() .. ".csv"
  write(path, table.concat(out, "\n") .. "\n")
  return path
end

--- The emulator in a process of its own: base URL, pid.
-- (40 ms per answer: 600 sales take a few seconds, time to act mid-run)
local function serve_mock()
  local out = tmpfile()
  local pid = spawn(RUN .. " --serve-mock 0 --mock-latency 40", out, true)
  wait_for(function() return read(out):match("^http") ~= nil end, "the emulator")
  return read(out):match("^(%S+)"), pid, out
end

-- the emulator's counts; a request that gets no answer in 10 s is asked
-- again (3 times), never waited on for ever
local function mock_stats(base)
  local code, out
  for _ = 1, 3 do
    code, out = support.sh("env -u LD_PRELOAD curl -s -m 10 -H 'Authorization: Bearer sk_test_mock' "
      .. base .. "/_mock/stats")
    if code == 0 then return json.decode(out).data end
  end
  error("the emulator did not answer GET /_mock/stats (curl exit " .. tostring(code) .. ")")
end

local BACKENDS = {
  { name = "SQLite", location = function() return "sqlite:" .. tmpfile() end },
  { name = "PostgreSQL", location = function() return pg.url() end },
}

teardown(function() pg.stop() end)

for _, backend in ipairs(BACKENDS) do
  describe("the journal on " .. backend.name, function()
    it("runs fn once and records its result; nil, err and an error record nothing", function()
      local j = journal.open(backend.location())
      local k = uniq("k")
      local calls = 0
      gigstack.run(function()
        local r1, how1 = j:once(k, function(key)
          calls = calls + 1
          assert.equals("gs:" .. k, key)
          return { id = "p1" }
        end)
        local r2, how2 = j:once(k, function() calls = calls + 1; return { id = "p2" } end)
        assert.same({ { id = "p1" }, "done" }, { r1, how1 })
        assert.same({ { id = "p1" }, "skipped" }, { r2, how2 })
        local r3, err3 = j:once(k .. "b", function() return nil, "declined" end)
        assert.same({ nil, "declined" }, { r3, err3 })
        local ok, err4 = pcall(j.once, j, k .. "c", function() error("boom") end)
        assert.is_false(ok)
        assert.matches("boom", tostring(err4))
        -- released: the next run may try again at once
        local r5 = j:once(k .. "c", function() return "again" end, { wait = 0 })
        assert.equals("again", r5)
      end, { timeout = support.WATCHDOG })
      assert.equals(1, calls)
      assert.equals('{"id":"p1"}', j:get(k))
      assert.is_nil(j:get(k .. "b"))
      j:record(k .. "d", { n = 1 })
      assert.equals('{"n":1}', j:get(k .. "d"))
      local m = j:metrics()
      assert.same({ 3, 2, 1 }, { m.taken - 1, m.ran, m.skipped })   -- b took a claim too: 4 taken
      j:close()
    end)

    it("runs the work once when two processes claim the same key at once (10 pairs)", function()
      local loc, log = backend.location(), tmpfile()
      local script = tmpfile() .. ".lua"
      write(script, support.ONCE_SCRIPT)
      local prefix = uniq("pair")
      for i = 1, 10 do
        local cmd = RUN .. " " .. script .. " '" .. loc .. "' " .. log .. " " .. prefix .. i
        assert.is_true(os.execute("(" .. cmd .. " & " .. cmd .. " & wait) 2>&1"))
      end
      local got = lines(log)
      os.remove(log); os.remove(script)
      assert.equals(10, #got)
    end)

    it("takes over at once a claim whose process died", function()
      local loc, k = backend.location(), uniq("dead")
      local code = os.execute(RUN .. " -e \"local j = require('gigstack.runner.journal').open('" .. loc
        .. "'); require('gigstack').run(function() j:once('" .. k .. "', function() os.exit(9) end) end)\"")
      assert.is_falsy(code)
      local j = journal.open(loc)
      local result, how
      gigstack.run(function()
        result, how = j:once(k, function() return "second" end, { wait = 0 })
      end, { timeout = support.WATCHDOG })
      assert.same({ "second", "done" }, { result, how })
      assert.equals(1, j:metrics().retried)
      j:close()
    end)

    it("keeps a claim while its work outlasts the lease, and takes over one whose lease ran out", function()
      local loc, k, started = backend.location(), uniq("lease"), tmpfile()
      -- the owner's work outlasts its 2 s lease; its heartbeat renews it
      local script = tmpfile() .. ".lua"
      write(script, [[
local gigstack = require "gigstack"
local j = require("gigstack.runner.journal").open(arg[1])
gigstack.run(function()
  j:once(arg[2], function()
    io.open(arg[3], "w"):close()
    gigstack.sleep(60)
    return 1
  end)
end)
]])
      local owner_pid = spawn(RUN .. " --lease 2 " .. script .. " " .. loc .. " " .. k .. " " .. started,
        "/dev/null", true)
      wait_for(function() return io.open(started) ~= nil end, "the owner to start its work")
      local j = journal.open(loc, { lease = 2 })
      local busy_err, result, how
      gigstack.run(function()
        gigstack.sleep(3)        -- one and a half leases: renewed, not expired
        local r, err = j:once(k, function() return "stolen" end, { wait = 0 })
        assert.is_nil(r)
        busy_err = err
        -- a stopped owner renews nothing: its lease runs out and the claim
        -- is taken over (its process is alive: only the lease lets go)
        os.execute("kill -STOP " .. owner_pid)
        result, how = j:once(k, function() return "taken over" end, { wait = 10 })
      end, { timeout = support.WATCHDOG })
      os.execute("kill -KILL " .. owner_pid .. "; kill -CONT " .. owner_pid)
      os.remove(started); os.remove(script)
      assert.equals("busy", busy_err.kind)
      assert.same({ "taken over", "done" }, { result, how })
      assert.equals(1, j:metrics().retried)
      j:close()
    end)

    it("splits 600 sales between three runners, one killed and restarted: each paid and invoiced once", function()
      local loc, batch = backend.location(), uniq("batch")
      local csv = sales_csv(600, batch)
      local base, mock_pid = serve_mock()
      local env = "GIGSTACK_BASE_URL=" .. base .. " GIGSTACK_API_KEY=sk_test_mock GIGSTACK_JOURNAL_URL=" .. loc .. " "
      local cmd = "env " .. env .. RUN .. " --lease 2 scripts/auto_invoice.lua " .. csv .. " --batch " .. batch
        .. " --concurrency 4"
      local pids, rcs, outs = {}, {}, {}
      for r = 1, 3 do
        outs[r] = tmpfile()
        pids[r], rcs[r] = spawn(cmd, outs[r])
      end
      -- kill runner 2 once the batch is under way, start it again
      wait_for(function() return mock_stats(base).payments >= 100 end, "100 payments")
      -- without make check's ASan preload: pkill deadlocks under it
      os.execute("env -u LD_PRELOAD pkill -KILL -P " .. pids[2])   -- the runner (child of its sh)
      assert.equals(137, wait_rc(rcs[2]))           -- killed mid-run, not finished
      outs[4] = tmpfile()
      pids[4], rcs[4] = spawn(cmd, outs[4])
      local codes = {}
      for _, r in ipairs{ 1, 3, 4 } do codes[#codes + 1] = wait_rc(rcs[r], 120) end
      local st = mock_stats(base)
      os.execute("kill -TERM " .. mock_pid)
      assert.same({ 0, 0, 0 }, codes, read(outs[1]) .. read(outs[3]) .. read(outs[4]))
      assert.same({ payments = 600, invoices = 600, duplicate_keys = 0, duplicate_invoices = 0 }, st)
      -- per-runner counts: each survivor prints how many sales it handled
      local own, printed = 0, {}
      for _, r in ipairs{ 1, 3, 4 } do
        local n, who = read(outs[r]):match("this runner:%s+(%d+) of 600 sales %(%d+ by other runners%) as (%S+)")
        assert.is_not_nil(n, read(outs[r]))
        printed[who] = tonumber(n)
        own = own + tonumber(n)
      end
      assert.is_true(own < 600)       -- the killed runner did some
      if backend.name == "PostgreSQL" then
        -- the queue says who finished each sale: the survivors' counts are
        -- theirs, the killed runner's is the rest, and they add up to 600
        local j = journal.open(loc)
        local by, totals = j.db:batch_counts(batch)
        j:close()
        assert.same({ done = 600 }, totals)
        local others = 0
        for who, c in pairs(by) do
          if printed[who] then assert.equals(printed[who], c.done, who)
          else others = others + c.done end
        end
        assert.equals(600, own + others)
      end
      os.remove(csv)
    end)

    it("runs a schedule with --lock on three processes once per tick (5 ticks)", function()
      local loc, log, lock = backend.location(), tmpfile(), tmpfile()
      local script = tmpfile() .. ".lua"
      write(script, [[
local gigstack = require "gigstack"
require("gigstack.runner.schedule").clock = function() return tonumber(os.getenv("TICK")) end
gigstack.every("*/5 * * * *", function(at)
  local f = assert(io.open(arg[1], "a"))
  f:write(at, " ", os.getenv("RUNNER"), "\n")
  f:close()
  gigstack.sleep(0.2)
end, { name = "nightly-]] .. uniq("job") .. [[" })
]])
      local t0 = 1764547200           -- 2025-12-01T00:00:00Z, on a 5 minute tick
      local codes = {}
      for tick = 0, 4 do
        local at = t0 + tick * 300
        local cmds = {}
        for r = 1, 3 do
          cmds[r] = string.format("env TICK=%d RUNNER=%d %s --journal '%s' --lock %s --once %s %s; echo rc=$?",
            at, r, RUN, loc, lock, script, log)
        end
        local code, out = support.sh("(" .. table.concat(cmds, " & ") .. " & wait) 2>/dev/null")
        assert.equals(0, code)
        for c in out:gmatch("rc=(%d+)") do codes[#codes + 1] = tonumber(c) end
      end
      local ran = {}
      for _, l in ipairs(lines(log)) do
        local at = tonumber(l:match("^(%d+)"))
        ran[at] = (ran[at] or 0) + 1
      end
      os.remove(log); os.remove(lock); os.remove(script)
      for tick = 0, 4 do assert.equals(1, ran[t0 + tick * 300], "tick " .. tick) end
      assert.equals(15, #codes)
      for _, c in ipairs(codes) do assert.is_true(c == 0 or c == 4, "exit code " .. c) end
    end)
  end)
end

describe("the PostgreSQL journal", function()
  it("stops starting work when the lock's connection is lost, and frees the lock for another run", function()
    local url, name, log = pg.url(), uniq("lock"), tmpfile()
    local script = tmpfile() .. ".lua"
    write(script, [[
local gigstack = require "gigstack"
local j = require("gigstack.runner.journal").default()
gigstack.run(function()
  for i = 1, 600 do
    local r, err = j:once("lockwork:" .. arg[2] .. ":" .. i, function()
      local f = assert(io.open(arg[1], "a")); f:write(i, "\n"); f:close()
      gigstack.sleep(0.05)
      return true
    end)
    if not r then io.stderr:write("stopped: ", tostring(err), "\n"); return end
  end
end)
]])
    local out = tmpfile()
    local _, rc = spawn(RUN .. " --journal " .. url .. " --lock " .. name .. " " .. script .. " " .. log
      .. " " .. name, out)
    wait_for(function() return #lines(log) >= 5 end, "the run to start its work")
    -- a second run is refused while the lock is held
    local code2, _, err2 = support.sh(RUN .. " --journal '" .. url .. "' --lock " .. name .. " -e 'print(1)'")
    assert.equals(4, code2)
    assert.matches("lock " .. name:gsub("%-", "%%-") .. " is held by another run", err2)
    -- the database ends the lock's session (as when the network drops)
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7302 AND granted")
    local code = wait_rc(rc)
    local done_at_stop = #lines(log)
    assert.equals(4, code, read(out))
    assert.matches("lock " .. name:gsub("%-", "%%-") .. " lost", read(out))
    assert.is_true(done_at_stop < 600)
    -- the lock is free: another run takes it
    local code3 = support.sh(RUN .. " --journal '" .. url .. "' --lock " .. name .. " -e 'print(1)'")
    assert.equals(0, code3)
    assert.equals(done_at_stop, #lines(log))     -- nothing ran after the stop
    os.remove(log); os.remove(script); os.remove(out)
  end)

  it("survives a database restart mid-batch: runners wait, resume and finish each sale once", function()
    local url, batch = pg.url(), uniq("restart")
    local csv = sales_csv(600, batch)
    local base, mock_pid = serve_mock()
    local cmd = "env GIGSTACK_BASE_URL=" .. base .. " GIGSTACK_API_KEY=sk_test_mock " .. RUN .. " --journal "
      .. url .. " --lease 5 scripts/auto_invoice.lua " .. csv .. " --batch " .. batch .. " --concurrency 4"
    local rcs, outs = {}, {}
    for r = 1, 3 do
      outs[r] = tmpfile()
      local _
      _, rcs[r] = spawn(cmd, outs[r])
    end
    wait_for(function() return mock_stats(base).payments >= 100 end, "100 payments")
    pg.restart()
    local codes = {}
    for r = 1, 3 do codes[r] = wait_rc(rcs[r], 120) end
    local st = mock_stats(base)
    os.execute("kill -TERM " .. mock_pid)
    local all = read(outs[1]) .. read(outs[2]) .. read(outs[3])
    assert.same({ 0, 0, 0 }, codes, all)
    assert.same({ payments = 600, invoices = 600, duplicate_keys = 0, duplicate_invoices = 0 }, st)
    -- they noticed: the run summary counts the reconnects
    local reconnects = 0
    for n in all:gmatch("(%d+) reconnects") do reconnects = reconnects + tonumber(n) end
    assert.is_true(reconnects >= 1, all)
    os.remove(csv)
  end)

  it("shows claims, locks and batches, releases expired claims and prunes old results", function()
    local url = pg.url()
    local k = uniq("ops")
    local j = journal.open(url, { lease = 1 })
    gigstack.run(function()
      assert(j:once(k, function() return 1 end))
      assert.equals("claimed", (j.db:claim(k .. "-held", 1)))
    end, { timeout = support.WATCHDOG })
    pg.psql("UPDATE gigstack_claims SET expires = now() - interval '1 minute' WHERE key = '" .. k .. "-held'")
    local code, out = support.sh(RUN .. " --journal '" .. url .. "' journal status")
    assert.equals(0, code)
    assert.matches("schema version 2", out)
    assert.matches(k:gsub("%-", "%%-") .. "%-held  owner %S+  attempts 1  expired", out)
    code, out = support.sh(RUN .. " --journal '" .. url .. "' journal unlock --expired")
    assert.equals(0, code)
    assert.matches("released %d+ claims", out)
    assert.equals("", pg.psql("SELECT key FROM gigstack_claims WHERE key = '" .. k .. "-held'"))
    pg.psql("UPDATE gigstack_done SET at = now() - interval '40 days' WHERE key = '" .. k .. "'")
    code, out = support.sh(RUN .. " --journal '" .. url .. "' journal prune --older-than 30")
    assert.equals(0, code)
    assert.matches("pruned [1-9]%d* results", out)
    assert.is_nil(j:get(k))
    local bad = { support.sh(RUN .. " --journal '" .. url .. "' journal prune") }
    assert.equals(1, bad[1])
    assert.matches("%-%-older%-than DAYS is required", bad[3])
    j:close()
  end)

  it("migrates an older schema to the current version once, with three runners starting together", function()
    local url = pg.url()
    local db = uniq("mig"):gsub("%-", "_")
    pg.psql("CREATE DATABASE " .. db)
    local url2 = url:gsub("/gigstack%?", "/" .. db .. "?")
    local jpg = require "gigstack.runner.journal_pg"
    jpg.SCHEMA_VERSION = 1                 -- an older gigstack made this one
    local ok, err = pcall(function() journal.open(url2):close() end)
    jpg.SCHEMA_VERSION = 2
    assert(ok, err)
    assert.equals("1\n", pg.psql("SELECT version FROM gigstack_schema ORDER BY version", url2))
    local cmd = RUN .. " -e \"require('gigstack.runner.journal').open('" .. url2 .. "'):close()\""
    assert.is_true(os.execute("(" .. cmd .. " & " .. cmd .. " & " .. cmd .. " & wait) && " .. cmd))
    assert.equals("1\n2\n", pg.psql("SELECT version FROM gigstack_schema ORDER BY version", url2))
    assert.equals("0\n", pg.psql("SELECT count(*) FROM gigstack_queue", url2))
  end)
end)
