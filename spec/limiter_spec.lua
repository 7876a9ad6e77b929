-- The per-client concurrency limit: FIFO, O(1) per call, and no slot
-- lost when a waiting task is cancelled.
local gigstack = require "gigstack"
local support = require "support"

describe("the concurrency limit", function()
  it("runs 2,000 queued calls through 4 slots, never more than 4 at once", function()
    support.with_mock(function(gs, server)
      local peak, now = 0, 0
      local results = gigstack.map((function()
        local t = {}
        for i = 1, 2000 do t[i] = i end
        return t
      end)(), 2000, function()
        now = now + 1
        peak = math.max(peak, gs.inflight)
        local page = gigstack.check(gs.clients:list{ limit = 1 })
        now = now - 1
        return page
      end)
      local ok = 0
      for _, r in ipairs(results) do if r[1] then ok = ok + 1 end end
      assert.equals(2000, ok)
      assert.equals(4, peak)
      assert.equals(0, gs.inflight)
      assert.is_true(server.emulator.requests >= 2000)
    end, { concurrency = 4 })
  end)

  it("gives back every slot when waiting tasks are cancelled", function()
    support.with_mock(function(gs)
      local finished = 0
      -- 2 slots, 20 tasks: most wait; a group timeout cancels them all
      local _, err = gigstack.timeout(0.3, function()
        local fns = {}
        for i = 1, 20 do
          fns[i] = function() gigstack.check(gs.clients:list{ limit = 1 }); finished = finished + 1 end
        end
        gigstack.all(table.unpack(fns))
      end)
      assert.equals("timeout", err.kind)
      assert.is_true(finished < 20, "finished " .. finished)
      assert.equals(0, gs.inflight)
      -- the client still has both slots: two calls run at once
      local a, b = gigstack.all(function() return gs.clients:list{ limit = 1 } end,
        function() return gs.clients:list{ limit = 1 } end)
      assert.is_table(a)
      assert.is_table(b)
      assert.equals(0, gs.inflight)
    end, { concurrency = 2, latency = { 0.1, 0.1 } })
  end)
end)

describe("requests on the wire", function()
  it("follow the client's concurrency past the engine's default of 256", function()
    local core = require "gigstack.core"
    support.with_mock(function(gs)
      local peak = 0
      local watcher = gigstack.spawn(function()
        for _ = 1, 400 do
          peak = math.max(peak, (core.stats()))
          if peak >= 400 then break end
          gigstack.sleep(0.01)
        end
      end)
      local items = {}
      for i = 1, 400 do items[i] = i end
      local results = gigstack.map(items, 400, function() return gigstack.check(gs.clients:list{ limit = 1 }) end)
      gigstack.join(watcher)
      assert.equals(400, #results)
      assert.is_true(core.max_inflight() >= 400)
      assert.equals(400, peak)
    end, { concurrency = 400, latency = { 0.5, 0.5 } })
  end)
end)
