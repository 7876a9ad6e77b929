--- Five-field cron expressions (minute hour day-of-month month
-- day-of-week) with lists, ranges, steps and names, plus the macros
-- `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`; next fire time
-- in a time zone.
local tz = require "gigstack.fiscal.tz"

local M = {}

local FIELDS = {
  { name = "minute", lo = 0, hi = 59 },
  { name = "hour", lo = 0, hi = 23 },
  { name = "day of month", lo = 1, hi = 31 },
  { name = "month", lo = 1, hi = 12, names = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
    jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 } },
  { name = "day of week", lo = 0, hi = 7, names = { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6 } },
}

local MACROS = { ["@hourly"] = "0 * * * *", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *",
  ["@weekly"] = "0 0 * * 0", ["@monthly"] = "0 0 1 * *", ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *" }

local function value(f, text)
  local v = tonumber(text)
  if not v and f.names then v = f.names[text:lower()] end
  if not v or math.type(v) ~= "integer" or v < f.lo or v > f.hi then
    return nil, string.format("%s: %q is not in %d-%d", f.name, text, f.lo, f.hi)
  end
  return v
end

local function field(f, text)
  local set, any = {}, text == "*"
  for part in text:gmatch("[^,]+") do
    local range, step = part:match("^([^/]+)/(%d+)$")
    range = range or part
    step = tonumber(step or "1")
    if step < 1 then return nil, f.name .. ": step must be at least 1" end
    local a, b
    if range == "*" then a, b = f.lo, f.hi
    else
      local x, y = range:match("^([%w]+)%-([%w]+)$")
      local err
      if x then
        a, err = value(f, x); if not a then return nil, err end
        b, err = value(f, y); if not b then return nil, err end
        if b < a then return nil, string.format("%s: range %s is backwards", f.name, range) end
      else
        a, err = value(f, range); if not a then return nil, err end
        b = part:find("/") and f.hi or a
      end
    end
    for v = a, b, step do set[v] = true end
  end
  if f.name == "day of week" and set[7] then set[0] = true end
  return set, any
end

--- Parse an expression; returns a schedule or nil, message.
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "cron expression must be a string" end
  local text = MACROS[expr:lower()] or expr
  local parts = {}
  for p in text:gmatch("%S+") do parts[#parts + 1] = p end
  if #parts ~= 5 then return nil, "cron expression needs 5 fields (minute hour day month weekday), got " .. #parts end
  local s = { expr = expr }
  for i, f in ipairs(FIELDS) do
    local set, any = field(f, parts[i])
    if not set then return nil, any end
    s[i] = set
    if i == 3 then s.dom_any = any end
    if i == 5 then s.dow_any = any end
  end
  return s
end

-- Vixie cron: when both day fields are restricted, either may match.
local function day_matches(s, c)
  local dom, dow = s[3][c.day], s[5][c.wday]
  if s.dom_any and s.dow_any then return true end
  if s.dom_any then return dow end
  if s.dow_any then return dom end
  return dom or dow
end

--- Does the schedule match local wall time c (from tz.to_local)?
function M.matches(s, c)
  return s[1][c.min] and s[2][c.hour] and s[4][c.month] and day_matches(s, c) or false
end

--- The first UTC instant strictly after `after` (epoch seconds) when the
-- schedule fires in time zone `zone_name` (default UTC).
function M.next(s, after, zone_name)
  local zone = assert(tz.zone(zone_name or "UTC"))
  local t = (after // 60 + 1) * 60
  local limit = t + 366 * 5 * 86400
  while t < limit do
    local c = tz.to_local(zone, t)
    if not s[4][c.month] or not day_matches(s, c) then
      -- jump to the next local midnight
      t = t + (24 * 60 - (c.hour * 60 + c.min)) * 60
    elseif not s[2][c.hour] then
      t = t + (60 - c.min) * 60
    elseif not s[1][c.min] then
      t = t + 60
    else
      return t
    end
  end
  return nil
end

return M
