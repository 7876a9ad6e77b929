-- Schedules on a simulated clock: cron fields, time zones, overlap.
local gigstack = require "gigstack"
local cron = require "gigstack.runner.cron"
local tz = require "gigstack.runner.tz"
local schedule = require "gigstack.runner.schedule"
local log = require "gigstack.runner.log"

local function utc(y, m, d, h, mi) return tz.days(y, m, d) * 86400 + (h or 0) * 3600 + (mi or 0) * 60 end

describe("schedules", function()
  it("fire a weekday 9:00 America/Mexico_City job at 15:00 UTC on each weekday of a month", function()
    local now = utc(2026, 11, 30, 23, 0)     -- Monday 30 Nov, 17:00 in Mexico City
    local job
    gigstack.run(function()
      job = gigstack.every("0 9 * * 1-5", function() end, { tz = "America/Mexico_City", limit = 23,
        clock = function() return now end, sleep = function(s) now = now + s; gigstack.sleep(0) end })
    end, { timeout = 10 })
    assert.equals(23, #job.fired)                      -- the 23 weekdays of December 2026
    for _, at in ipairs(job.fired) do
      local c = tz.civil(at)
      assert.same({ 15, 0 }, { c.hour, c.min })
      assert.is_true(c.wday >= 1 and c.wday <= 5)
    end
    assert.equals(utc(2026, 12, 1, 15), job.fired[1])
    assert.equals(utc(2026, 12, 31, 15), job.fired[23])
  end)

  it("skips and logs a tick while the previous run of the same job is still going", function()
    local now = utc(2026, 12, 1, 0, 0)
    local lines = {}
    local saved_out, saved_format = log.out, log.format
    log.out = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end, flush = function() end }
    log.format = "json"
    local job
    local ok, err = pcall(gigstack.run, function()
      job = gigstack.every("* * * * *", function() gigstack.sleep(0.15) end, { limit = 3,
        clock = function() return now end,
        sleep = function(s) now = now + s; gigstack.sleep(0.05) end })
    end, { timeout = 10 })
    log.out, log.format = saved_out, saved_format
    assert.is_true(ok, err)
    assert.equals(1, job.runs)
    assert.equals(2, job.skipped)
    assert.matches('"event":"schedule.skipped"', table.concat(lines))
  end)

  it("parses lists, ranges, steps and names, and rejects bad fields naming them", function()
    local s = assert(cron.parse("*/15 9-17 * jan-mar mon,wed,fri"))
    assert.is_true(cron.matches(s, { min = 45, hour = 17, day = 4, month = 2, wday = 3 }))
    assert.is_false(cron.matches(s, { min = 50, hour = 17, day = 4, month = 2, wday = 3 }))
    assert.is_false(cron.matches(s, { min = 0, hour = 9, day = 4, month = 4, wday = 1 }))
    assert.is_true(cron.matches(assert(cron.parse("0 0 * * 7")), { min = 0, hour = 0, day = 6, month = 12, wday = 0 }))
    assert.equals(utc(2027, 1, 1, 6), cron.next(assert(cron.parse("@yearly")), utc(2026, 12, 1), "America/Mexico_City"))
    assert.matches("minute", select(2, cron.parse("61 * * * *")))
    assert.matches("5 fields", select(2, cron.parse("* * *")))
    assert.matches("day of week", select(2, cron.parse("* * * * funday")))
    assert.has_error(function() gigstack.every("* * * * *", print, { tz = "Mars/Olympus" }) end)
  end)

  it("follows daylight saving time in zones that have it", function()
    local ny = assert(tz.zone("America/New_York"))
    assert.equals(-4 * 3600, tz.offset(ny, utc(2026, 7, 1)))
    assert.equals(-5 * 3600, tz.offset(ny, utc(2026, 12, 1)))
    local s = assert(cron.parse("0 9 * * *"))
    assert.equals(utc(2026, 3, 7, 14), cron.next(s, utc(2026, 3, 7), "America/New_York"))   -- EST
    assert.equals(utc(2026, 3, 9, 13), cron.next(s, utc(2026, 3, 9), "America/New_York"))   -- EDT
  end)

  it("runs only due jobs under --once", function()
    local saved = schedule.once
    schedule.once = true
    local ran = {}
    gigstack.run(function()
      local at = function() return utc(2026, 12, 1, 15, 0) end   -- Tuesday 9:00 in Mexico City
      gigstack.every("0 9 * * 1-5", function() ran[#ran + 1] = "due" end, { tz = "America/Mexico_City", clock = at })
      gigstack.every("0 10 * * *", function() ran[#ran + 1] = "not due" end, { tz = "America/Mexico_City", clock = at })
    end, { timeout = 10 })
    schedule.once = saved
    assert.same({ "due" }, ran)
  end)
end)
