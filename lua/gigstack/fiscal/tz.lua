--- Time zones from the system's TZif files (/usr/share/zoneinfo): UTC
-- offset at an instant, and local wall time <-> UTC. The 64-bit (v2+)
-- transition table is read, and instants past its end (after 2037 in a
-- "fat" file, after the last rule change in a "slim" one) follow the
-- POSIX TZ rule of the file's footer, e.g. "PST8PDT,M3.2.0,M11.1.0".
local M = {}

M.DIR = "/usr/share/zoneinfo"
local cache = {}

local function be(s, i, n)
  local v = 0
  for k = i, i + n - 1 do v = v * 256 + s:byte(k) end
  if n == 4 and v >= 0x80000000 then v = v - 0x100000000 end
  return v
end

local function parse(data, name)
  if data:sub(1, 4) ~= "TZif" then return nil, name .. ": not a TZif file" end
  local function counts(at)
    return be(data, at + 20, 4), be(data, at + 24, 4), be(data, at + 28, 4), be(data, at + 32, 4),
      be(data, at + 36, 4), be(data, at + 40, 4)
  end
  local isutc, isstd, leap, timecnt, typecnt, charcnt = counts(1)
  local at = 45
  local size = 4
  local footer_at
  if data:sub(5, 5) >= "2" then   -- skip the 32-bit block, read the 64-bit one
    at = at + timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isutc
    isutc, isstd, leap, timecnt, typecnt, charcnt = counts(at)
    at = at + 44
    size = 8
    footer_at = at + timecnt * 8 + timecnt + typecnt * 6 + charcnt + leap * 12 + isstd + isutc
  end
  local z = { name = name, times = {}, idx = {}, types = {} }
  for i = 1, timecnt do z.times[i] = be(data, at + (i - 1) * size, size) end
  at = at + timecnt * size
  for i = 1, timecnt do z.idx[i] = data:byte(at + i - 1) + 1 end
  at = at + timecnt
  for i = 1, typecnt do
    z.types[i] = { offset = be(data, at + (i - 1) * 6, 4), dst = data:byte(at + (i - 1) * 6 + 4) == 1 }
  end
  if footer_at then
    local text = data:match("^\n([^\n]*)\n", footer_at)
    if text and text ~= "" then
      local rule, err = M.posix(text)
      if not rule then return nil, name .. ": footer " .. err end
      z.rule = rule
    end
  end
  if #z.types == 0 then
    if not z.rule then return nil, name .. ": no local time types" end
    z.types[1] = { offset = z.rule.std }
  end
  return z
end

-- POSIX TZ strings (the TZif footer): "CST6", "<-03>3",
-- "PST8PDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
-- with Jn / n / Mm.w.d dates and /time (may be negative or > 24, v3).
local function hms(str, pos)
  local sign, h, rest = str:match("^([+-]?)(%d+)()", pos)
  if not h then return nil end
  local v = tonumber(h) * 3600
  local m, p2 = str:match("^:(%d+)()", rest)
  if m then
    v, rest = v + tonumber(m) * 60, p2
    local sec, p3 = str:match("^:(%d+)()", rest)
    if sec then v, rest = v + tonumber(sec), p3 end
  end
  return sign == "-" and -v or v, rest
end

local function zname(str, pos)
  local q, p = str:match("^<([%w+-]+)>()", pos)
  if q then return q, p end
  return str:match("^(%a%a%a+)()", pos)
end

local function date_rule(str, pos)
  local r, p
  local m, w, d
  m, w, d, p = str:match("^M(%d+)%.(%d)%.(%d)()", pos)
  if m then
    r = { kind = "M", month = tonumber(m), week = tonumber(w), wday = tonumber(d) }
    if r.month < 1 or r.month > 12 or r.week < 1 or r.week > 5 or r.wday > 6 then return nil end
  else
    local j
    j, p = str:match("^J(%d+)()", pos)
    if j then r = { kind = "J", n = tonumber(j) }
    else
      j, p = str:match("^(%d+)()", pos)
      if not j then return nil end
      r = { kind = "n", n = tonumber(j) }
    end
  end
  r.time = 7200
  if str:sub(p, p) == "/" then
    r.time, p = hms(str, p + 1)
    if not r.time then return nil end
  end
  return r, p
end

--- Parse a POSIX TZ string; offsets east of UTC in seconds:
-- {std, dst, start, finish} (dst nil without daylight time).
function M.posix(str)
  local std_name, p = zname(str, 1)
  if not std_name then return nil, "bad standard time name in " .. str end
  local off
  off, p = hms(str, p)
  if not off then return nil, "bad offset in " .. str end
  local rule = { std = -off, text = str }
  if p > #str then return rule end
  local dst_name
  dst_name, p = zname(str, p)
  if not dst_name then return nil, "bad daylight time name in " .. str end
  rule.dst = rule.std + 3600
  if str:sub(p, p) ~= "," and p <= #str then
    off, p = hms(str, p)
    if not off then return nil, "bad daylight offset in " .. str end
    rule.dst = -off
  end
  if str:sub(p, p) ~= "," then return nil, "no daylight rule in " .. str end
  rule.start, p = date_rule(str, p + 1)
  if not rule.start or str:sub(p, p) ~= "," then return nil, "bad daylight start in " .. str end
  rule.finish, p = date_rule(str, p + 1)
  if not rule.finish or p <= #str then return nil, "bad daylight end in " .. str end
  return rule
end

--- Load a zone by IANA name ("America/Mexico_City", "UTC").
function M.zone(name)
  name = name or "UTC"
  if cache[name] then return cache[name] end
  if name == "UTC" or name == "Etc/UTC" then
    cache[name] = { name = name, times = {}, idx = {}, types = { { offset = 0 } } }
    return cache[name]
  end
  if name:find("%.%.") or not name:match("^[%w_/+%-]+$") then return nil, "invalid time zone name " .. name end
  local f = io.open(M.DIR .. "/" .. name, "rb")
  if not f then return nil, "unknown time zone " .. name end
  local data = f:read("a")
  f:close()
  local z, err = parse(data, name)
  if not z then return nil, err end
  cache[name] = z
  return z
end

local days, civil   -- below

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end

-- Local seconds since 1970 of a rule's date and time in year y.
local function rule_local(r, y)
  local d
  if r.kind == "M" then
    local first = days(y, r.month, 1)
    local wday1 = (first + 4) % 7
    local mday = 1 + (r.wday - wday1) % 7 + (r.week - 1) * 7
    local mdays = ({ 31, is_leap(y) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[r.month]
    while mday > mdays do mday = mday - 7 end
    d = first + mday - 1
  elseif r.kind == "J" then   -- 1..365, February 29 never counted
    d = days(y, 1, 1) + r.n - 1 + ((is_leap(y) and r.n >= 60) and 1 or 0)
  else                        -- 0..365, February 29 counted
    d = days(y, 1, 1) + r.n
  end
  return d * 86400 + r.time
end

-- The footer rule's offset at UTC instant t.
local function rule_offset(rule, t)
  if not rule.dst then return rule.std end
  local y = civil(t + rule.std).year
  local start = rule_local(rule.start, y) - rule.std      -- starts in standard time
  local finish = rule_local(rule.finish, y) - rule.dst    -- ends in daylight time
  local in_dst
  if start < finish then in_dst = t >= start and t < finish
  else in_dst = not (t >= finish and t < start) end       -- southern hemisphere
  return in_dst and rule.dst or rule.std
end

--- UTC offset in seconds of `zone` at UTC instant t.
function M.offset(zone, t)
  local times = zone.times
  if zone.rule and (#times == 0 or t >= times[#times]) then return rule_offset(zone.rule, t) end
  if #times == 0 or t < times[1] then
    for _, ty in ipairs(zone.types) do if not ty.dst then return ty.offset end end
    return zone.types[1].offset
  end
  local lo, hi = 1, #times
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if times[mid] <= t then lo = mid else hi = mid - 1 end
  end
  return zone.types[zone.idx[lo]].offset
end

-- Days from 1970-01-01 to y-m-d (proleptic Gregorian).
function days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
M.days = days

--- Civil fields of a UTC-based epoch seconds value, with weekday 0=Sunday.
function civil(t)
  local z = t // 86400
  local secs = t - z * 86400
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return { year = y, month = m, day = d, hour = secs // 3600, min = secs % 3600 // 60, sec = secs % 60,
    wday = (t // 86400 + 4) % 7 }
end
M.civil = civil

--- Local wall time in `zone` at UTC instant t.
function M.to_local(zone, t)
  return M.civil(t + M.offset(zone, t))
end

--- UTC instant of a local wall time; for a time skipped by a DST jump the
-- instant after the gap, for a repeated one the first.
function M.to_utc(zone, y, m, d, h, mi)
  local wall = days(y, m, d) * 86400 + h * 3600 + mi * 60
  local guess = wall - M.offset(zone, wall)
  local t = wall - M.offset(zone, guess)
  if M.offset(zone, t) + t ~= wall then   -- in a gap: move past it
    t = wall - M.offset(zone, guess - 86400)
  end
  return t
end

return M
