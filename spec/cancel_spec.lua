-- Cancellation and limits: gigstack.timeout, <close> handles, token
-- bucket, and the runner's SIGTERM grace period.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local core = require "gigstack.core"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

describe("cancellation", function()
  it("gigstack.timeout cancels a group's requests in flight and returns a timeout error", function()
    support.with_mock(function(gs)
      local closed = false
      local t0 = core.now()
      local v, err = gigstack.timeout(0.3, function()
        local _ <close> = setmetatable({}, { __close = function() closed = true end })
        local a, b = gigstack.all(
          function() return gs:request("GET", "/clients", { headers = { ["X-Mock-Latency"] = "3000" } }) end,
          function() return gs:request("GET", "/services", { headers = { ["X-Mock-Latency"] = "3000" } }) end)
        return a, b
      end)
      local took = core.now() - t0
      assert.is_nil(v)
      assert.equals("timeout", err.kind)
      assert.is_true(took >= 290 and took < 1000, "took " .. took)
      assert.is_true(closed)
      assert.equals(0, (core.stats()))
      local fast = gigstack.timeout(2, function() return gigstack.check(gs.clients:list()) end)
      assert.is_table(fast.data)
    end)
  end)

  it("cancels a request handle when its <close> variable goes out of scope", function()
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, handler = function() gigstack.sleep(2) return 200 end })
      do
        local h <close> = assert(http.start{ url = server.url .. "/slow" })
        gigstack.sleep(0.05)
        assert.equals(1, (core.stats()))
        assert.is_table(h)
      end
      assert.equals(0, (core.stats()))
      server.close()
    end, { timeout = support.WATCHDOG })
  end)

  it("spaces requests with the optional token bucket", function()
    support.with_mock(function(_, server)
      local gs = gigstack.new{ api_key = server.api_key, base_url = server.base_url,
        rate_limit = { per_second = 20, burst = 1 } }
      local t0 = core.now()
      local fns = {}
      for i = 1, 11 do fns[i] = function() return gigstack.check(gs.clients:list()) end end
      gigstack.all(table.unpack(fns))
      local took = core.now() - t0
      assert.is_true(took >= 480, "11 requests at 20/s took " .. took .. " ms")
    end)
  end)

  it("on SIGTERM starts no new request, lets those in flight finish, and exits 143", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local gigstack = require "gigstack"
      local gs = gigstack.new{}
      local finished, refused = 0, 0
      local fns = {}
      for i = 1, 5 do
        fns[i] = function()
          local first = gs:request("GET", "/clients", { headers = { ["X-Mock-Latency"] = "800" } })
          if first then finished = finished + 1 end
          local _, err = gs:request("GET", "/clients")
          if err and err.kind == "cancelled" then refused = refused + 1 end
        end
      end
      gigstack.all(table.unpack(fns))
      print("finished=" .. finished .. " refused=" .. refused)
    ]])
    f:close()
    local code, out, err = support.sh("sh -c '" .. RUN .. " --mock " .. script .. " & pid=$!; sleep 0.3; "
      .. "kill -TERM $pid; wait $pid; echo exit=$?'")
    os.remove(script)
    assert.equals(0, code)
    assert.matches("finished=5 refused=5", out)
    assert.matches("exit=143", out)
    assert.matches("SIGTERM: starting no new requests; 5 in flight", err)
  end)
end)
