--- Time zones from the system's TZif files (/usr/share/zoneinfo): UTC
-- offset at an instant, and local wall time <-> UTC. Only the 64-bit
-- (v2+) transition table is read; instants past the table use its last
-- type (the POSIX footer rule is not evaluated).
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
  if data:sub(5, 5) >= "2" then   -- skip the 32-bit block, read the 64-bit one
    at = at + timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isutc
    local _
    _, _, _, timecnt, typecnt = counts(at)
    at = at + 44
    size = 8
  end
  local z = { name = name, times = {}, idx = {}, types = {} }
  for i = 1, timecnt do z.times[i] = be(data, at + (i - 1) * size, size) end
  at = at + timecnt * size
  for i = 1, timecnt do z.idx[i] = data:byte(at + i - 1) + 1 end
  at = at + timecnt
  for i = 1, typecnt do
    z.types[i] = { offset = be(data, at + (i - 1) * 6, 4), dst = data:byte(at + (i - 1) * 6 + 4) == 1 }
  end
  return z
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

--- UTC offset in seconds of `zone` at UTC instant t.
function M.offset(zone, t)
  local times = zone.times
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
local function days(y, m, d)
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
function M.civil(t)
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
