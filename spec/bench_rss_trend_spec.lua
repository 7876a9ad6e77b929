-- `make bench`'s "RSS flat" verdict (bench/lib/rss_trend.lua): a noisy
-- flat series passes, a leak fails, whatever the noise; and the whole
-- method (full GC, VmRSS every 25k, the trend) tells a process that leaks
-- from one that does not.
local support = require "support"
local trend = dofile("bench/lib/rss_trend.lua")

local function series(every, ys)
  local s = {}
  for i, y in ipairs(ys) do s[i] = { requests = every * i, rss_kb = y } end
  return s
end

-- the run of issue 12 that the old rule ("highest sample vs the first")
-- failed with 6.2 % although the last sample equals the first
local RUN_12 = { 15216, 15264, 16012, 16160, 15344, 15240 }

-- noise of the same size on 12 samples (every 25k), no trend
local NOISY = { 15200, 15950, 15300, 16150, 15250, 15900, 15180, 16100, 15400, 15800, 15260, 15220 }

--- ys plus a leak of bytes per request
local function leaking(every, ys, bytes)
  local out = {}
  for i, y in ipairs(ys) do out[i] = y + bytes * every * i / 1024 end
  return out
end

describe("bench RSS trend", function()
  it("fits a least-squares line and states the slope in kB per 100k requests", function()
    local r = assert(trend.judge(series(25000, { 1000, 1250, 1500, 1750 })))
    assert.near(1000, r.slope_kb_per_100k, 1e-9)
    assert.near(75, r.trend_pct, 1e-9)           -- 750 kB over 75k requests on 1000 kB
    assert.near(0, r.spread_kb, 1e-9)
    assert.equals(75000, r.span_requests)
    assert.same({ nil, "need at least 3 samples" }, { trend.judge(series(25000, { 1, 2 })) })
  end)

  it("passes flat noisy series: the run the old rule failed, and saw-tooth noise", function()
    local r = assert(trend.judge(series(50000, RUN_12)))
    assert.is_true(r.ok)
    assert.is_true(r.trend_pct < 1, r.trend_pct)
    assert.near(52, r.end_delta_kb, 1e-9)
    local n = assert(trend.judge(series(25000, NOISY)))
    assert.is_true(n.ok, n.trend_pct)
    assert.is_true(math.abs(n.trend_pct) < 2, n.trend_pct)
  end)

  it("fails a leak of a few bytes per request under the same noise", function()
    for _, case in ipairs{ { 50000, RUN_12 }, { 25000, NOISY } } do
      local every, ys = case[1], case[2]
      for _, bytes in ipairs{ 4, 16, 256 } do
        local r = assert(trend.judge(series(every, leaking(every, ys, bytes))))
        assert.is_false(r.ok, string.format("%d B/request: %.2f %%", bytes, r.trend_pct))
        assert.is_true(r.slope_kb_per_100k > bytes * 100000 / 1024 * 0.7)
      end
    end
    -- and a flat series stays flat however far from 0 the level is
    assert.is_true(trend.judge(series(25000, { 9e5, 9e5, 9e5, 9e5 })).ok)
  end)

  it("the method tells a leaking process from one that is not (VmRSS after a full GC, every 25k)", function()
    -- each "request" makes 200 bytes of garbage; the leaky one keeps 64 of them
    local child = [[
      local leak = arg[1] == "leak"
      local kept, samples = {}, {}
      local function rss()
        local f = assert(io.open("/proc/self/status")); local t = f:read("a"); f:close()
        return tonumber(t:match("VmRSS:%s*(%d+) kB"))
      end
      for i = 1, 300000 do
        local s = string.rep("x", 192) .. string.format("%08d", i)
        if leak then kept[#kept + 1] = s:sub(1, 40) end
        if i % 25000 == 0 then
          collectgarbage("collect")
          samples[#samples + 1] = string.format("%d %d", i, rss())
        end
      end
      print(table.concat(samples, ","))
    ]]
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(child)
    f:close()
    local verdicts = {}
    for _, mode in ipairs{ "flat", "leak" } do
      -- without make check's ASan preload: its quarantine holds freed memory
      -- and would make the flat process look like a leak
      local code, out = support.sh("env -u LD_PRELOAD lua5.4 " .. path .. " " .. mode)
      assert.equals(0, code, out)
      local s = {}
      for n, kb in out:gmatch("(%d+) (%d+)") do s[#s + 1] = { requests = tonumber(n), rss_kb = tonumber(kb) } end
      assert.equals(12, #s, out)
      verdicts[mode] = assert(trend.judge(s))
    end
    os.remove(path)
    assert.is_true(verdicts.flat.ok, verdicts.flat.trend_pct)
    assert.is_false(verdicts.leak.ok, verdicts.leak.trend_pct)
  end)
end)
