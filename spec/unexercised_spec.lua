-- Behaviours the suite used to claim without running them (issue 16):
-- Retry-After as an HTTP date, 502/504 faults, the top-level gigstack.run
-- watchdog, the text log format, the outcome table, GIGSTACK_LUA_DIR.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local core = require "gigstack.core"
local log = require "gigstack.runner.log"
local report = require "gigstack.runner.report"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

describe("retries", function()
  it("honour Retry-After given as an HTTP date", function()
    local ok, err = pcall(gigstack.run, function()
      local calls, date = 0, nil
      local server = assert(http.listen{ port = 0, handler = function()
        calls = calls + 1
        if calls == 1 then
          -- 3 s ahead, whole seconds: the client may wait between 2 and 3 s
          date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3)
          return 429, { ["Retry-After"] = date, ["Content-Type"] = "application/json" }, '{"message":"slow down"}'
        end
        return 200, { ["Content-Type"] = "application/json" }, '{"data":[]}'
      end })
      local gs = gigstack.new{ api_key = "sk_test_x", base_url = server.url .. "/v2", retries = 1,
        backoff_base = 0.01, backoff_cap = 0.02 }   -- a backoff this small cannot pass for the date
      local page, rerr, meta = gs:request("GET", "/clients")
      server.close()
      assert.is_nil(rerr)
      assert.is_table(page.data)
      assert.equals(2, calls)
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", date)
      local slept = meta.attempts[2].slept
      assert.is_true(slept >= 1.9 and slept <= 3.1, "slept " .. slept)
    end, { timeout = support.WATCHDOG })
    assert.is_true(ok, tostring(err))
  end)

  for _, status in ipairs{ "502", "504" } do
    it("retry a GET after a " .. status .. ", never a POST without an idempotency key", function()
      support.with_mock(function(gs)
        local fault = { ["X-Mock-Fault"] = status .. "*1" }
        local page, err, meta = gs:request("GET", "/clients", { headers = fault })
        assert.is_nil(err)
        assert.equals(0, #page.data)    -- a fresh emulator (no example data)
        assert.same({ tonumber(status), 200 }, { meta.attempts[1].status, meta.attempts[2].status })
        local _, perr = gs:request("POST", "/clients", { headers = { ["X-Mock-Fault"] = status },
          body = { legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601" } })
        assert.equals("server", perr.kind)
        assert.equals(tonumber(status), perr.status)
        assert.equals(1, #perr.attempts)
        local clients = gigstack.check(gs.clients:list{ limit = 100 })
        assert.equals(0, clients.total_results)   -- the fault answered before the emulator acted
      end)
    end)
  end
end)

describe("gigstack.run's watchdog", function()
  it("raises when the loop outlives opts.timeout", function()
    local t0 = core.now()
    local ok, err = pcall(gigstack.run, function() gigstack.sleep(20) end, { timeout = 0.3 })
    local took = core.now() - t0
    assert.is_false(ok)
    assert.matches("watchdog: gigstack.run did not finish within 0.3 s", err)
    assert.is_true(took >= 290 and took < 5000, "took " .. took .. " ms")
  end)
end)

describe("the runner's text output", function()
  it("logs one line: time, level, event, fields sorted, keys redacted", function()
    local saved_out, saved_format, saved_debug = log.out, log.format, log.debug
    local buf = {}
    log.out = { write = function(_, ...) for _, s in ipairs{ ... } do buf[#buf + 1] = s end end,
      flush = function() end }
    log.format, log.debug = "text", false
    log.event("schedule.skipped", { job = "nightly", reason = "previous run still going", key = "sk_live_abc_123" },
      "warn")
    log.failure("run.failed", setmetatable({}, { __tostring = function() return "boom\nsecond line" end }),
      "boom\nstack traceback:\n\t...")
    log.out, log.format, log.debug = saved_out, saved_format, saved_debug
    local text = table.concat(buf)
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equals(2, #lines, text)     -- no traceback in text mode without --debug
    assert.matches("^%d%d:%d%d:%d%d warn schedule%.skipped job=nightly key=sk_…redacted "
      .. "reason=previous run still going$", lines[1])
    assert.matches("^%d%d:%d%d:%d%d error run%.failed error=boom$", lines[2])
  end)

  it("the live progress line counts each outcome, also after the items are reset or replaced", function()
    local saved, saved_progress, saved_stderr = report.items, report.progress, io.stderr
    local written = {}
    local fake = { write = function(self, ...) for _, s in ipairs{ ... } do written[#written + 1] = s end
      return self end, flush = function(self) return self end }
    report.progress = true
    report.items = {}
    rawset(io, "stderr", fake)   -- the progress line goes to io.stderr
    local ok, res = pcall(function()
      for _, o in ipairs{ "done", "failed", "done", "skipped" } do report.add{ item = o, outcome = o } end
      local after_four = written[#written]
      report.reset()
      report.add{ item = "x", outcome = "failed" }
      local after_reset = written[#written]
      report.items = { { item = "a", outcome = "done" } }
      report.add{ item = "b", outcome = "done" }
      return { after_four, after_reset, written[#written] }
    end)
    rawset(io, "stderr", saved_stderr)
    report.items, report.progress = saved, saved_progress
    assert(ok, res)
    assert.same({ "\r4 items: 2 done, 1 failed, 1 skipped ", "\r1 items: 0 done, 1 failed, 0 skipped ",
      "\r2 items: 2 done, 0 failed, 0 skipped " }, res)
  end)

  it("ends a run with a table of outcomes, one line each, sorted, and the total", function()
    local saved = report.items
    report.items = {}
    for _, o in ipairs{ "done", "failed", "done", "skipped", "done" } do report.add{ item = o, outcome = o } end
    local lines = report.summary()
    report.items = saved
    assert.same({
      "outcome     items",
      "done            3",
      "failed          1",
      "skipped         1",
      "total           5",
    }, lines)
  end)
end)

describe("GIGSTACK_LUA_DIR", function()
  it("makes gigstack-run load its Lua files from there", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && cp -r lua/gigstack " .. dir .. "/"))
    -- a marked copy: only it answers "gigstack-run X.Y.Z-luadir"
    local path = dir .. "/gigstack/runner/init.lua"
    local f = assert(io.open(path))
    local src = f:read("a")
    f:close()
    local n
    src, n = src:gsub('"gigstack%-run %%s %(', '"gigstack-run %%s-luadir (')
    assert.equals(1, n)
    f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    local code, out = support.sh("GIGSTACK_LUA_DIR=" .. dir .. " " .. RUN .. " -v")
    local code2, out2 = support.sh("env -u GIGSTACK_LUA_DIR " .. RUN .. " -v")
    os.execute("rm -rf " .. dir)
    assert.equals(0, code)
    assert.matches("^gigstack%-run [%d.]+%-luadir ", out)
    assert.equals(0, code2)
    assert.is_nil(out2:find("-luadir", 1, true))
  end)
end)
