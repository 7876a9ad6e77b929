-- core.step(true) must never block while a finished request waits in the
-- event queue, whichever libuv phase queued it (a timer callback here).
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local core = require "gigstack.core"
local support = require "support"

describe("event queue wake-up", function()
  it("answers a request that fails synchronously in milliseconds, not at the next timer", function()
    local elapsed, resp, err
    local ok, run_err = pcall(gigstack.run, function()
      local t0 = core.now()
      -- curl refuses the scheme inside the engine's timer callback
      resp, err = http.request{ url = "ftp://127.0.0.1:1/", retries = 0 }
      elapsed = core.now() - t0
    end, { timeout = 20 })
    assert.is_true(ok, tostring(run_err))
    assert.is_nil(resp)
    assert.is_table(err)
    -- the watchdog (20 s) is the next timer: a stall would take that long
    assert.is_true(elapsed < 2000, string.format("answered after %.0f ms", elapsed))
  end)

  it("serves 1,000 sequential keep-alive GETs to another process with none slower than 1 s", function()
    local run = support.build_dir() .. "/gigstack-run"
    local emu = io.popen("sh -c 'echo $$; exec " .. run .. " --serve-mock 127.0.0.1:0'")
    local pid = emu:read("l")
    local base = emu:read("l")
    local times = {}
    local ok, run_err = pcall(gigstack.run, function()
      local auth = { Authorization = "Bearer sk_test_mock" }
      for i = 1, 1000 do
        local t0 = core.now()
        local resp, err = http.request{ url = base .. "/ping", headers = auth, timeout = 5 }
        times[i] = core.now() - t0
        assert(resp, err and err.message)
        assert(resp.status == 200, "status " .. tostring(resp.status))
      end
    end, { timeout = 25 })
    os.execute("kill -TERM " .. pid)
    emu:read("a")
    emu:close()
    assert.is_true(ok, tostring(run_err))
    table.sort(times)
    print(string.format("# 1,000 sequential GETs: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
      times[500], times[990], times[1000]))
    assert.is_true(times[1000] < 1000, string.format("slowest took %.0f ms", times[1000]))
  end)
end)
