-- Time zones past the TZif transition table: the POSIX TZ rule in the
-- file's footer (dates after 2037, "slim" zone files). The expected
-- offsets come from GNU date (glibc evaluates the footer itself), not
-- from gigstack.fiscal.tz.
local tz = require "gigstack.fiscal.tz"

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- "+hhmm" / "-hhmm" -> seconds east of UTC
local function seconds(z)
  local sign, h, m = z:match("^([+-])(%d%d)(%d%d)$")
  local v = tonumber(h) * 3600 + tonumber(m) * 60
  return sign == "-" and -v or v
end

-- GNU date's offsets of zone (a name, a file path or a POSIX TZ string)
-- at each instant
local function date_offsets(zone, instants)
  local cmd = {}
  for _, t in ipairs(instants) do
    cmd[#cmd + 1] = "TZ='" .. zone .. "' date -d @" .. t .. " +%z"
  end
  local out = {}
  for z in sh(table.concat(cmd, "; ")):gmatch("[^\n]+") do out[#out + 1] = seconds(z) end
  return out
end

local function epoch(utc_text)   -- "2040-03-11 10:00:00" UTC, by GNU date
  return math.tointeger(tonumber(sh("date -u -d '" .. utc_text .. "' +%s")))
end

local function with_dir(dir, fn)
  local saved = tz.DIR
  tz.DIR = dir
  local ok, err = pcall(fn)
  tz.DIR = saved
  assert(ok, err)
end

describe("time zones past the transition table", function()
  it("Tijuana in July 2040 is -07 (PDT by the footer rule), in January -08", function()
    local z = assert(tz.zone("America/Tijuana"))
    assert.equals("PST8PDT,M3.2.0,M11.1.0", z.rule.text)
    -- PDT runs from the second Sunday of March (2040-03-11) 02:00 PST =
    -- 10:00 UTC to the first Sunday of November (2040-11-04) 02:00 PDT = 09:00 UTC
    assert.equals(-7 * 3600, tz.offset(z, epoch("2040-07-01 12:00:00")))
    assert.equals(-8 * 3600, tz.offset(z, epoch("2040-01-15 12:00:00")))
    assert.equals(-8 * 3600, tz.offset(z, epoch("2040-03-11 09:59:59")))
    assert.equals(-7 * 3600, tz.offset(z, epoch("2040-03-11 10:00:00")))
    assert.equals(-7 * 3600, tz.offset(z, epoch("2040-11-04 08:59:59")))
    assert.equals(-8 * 3600, tz.offset(z, epoch("2040-11-04 09:00:00")))
    local c = tz.to_local(z, epoch("2040-07-01 19:00:00"))
    assert.same({ 2040, 7, 1, 12 }, { c.year, c.month, c.day, c.hour })
  end)

  it("agrees with glibc every 30 days from 2036 to 2050 in zones north, south and without DST", function()
    local instants = {}
    for t = epoch("2036-01-01 00:00:00"), epoch("2050-01-01 00:00:00"), 30 * 86400 do
      instants[#instants + 1] = t
    end
    for _, name in ipairs{ "America/Tijuana", "America/New_York", "America/Santiago", "Australia/Sydney",
      "America/Mexico_City", "Europe/Dublin" } do
      local z = assert(tz.zone(name))
      local want = date_offsets(name, instants)
      assert.equals(#instants, #want)
      for i, t in ipairs(instants) do
        assert.equals(want[i], tz.offset(z, t), name .. " at " .. t)
      end
    end
  end)

  it("reads a slim zone file (zic -b slim: the rule only in the footer)", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local src = assert(io.open(dir .. "/src", "w"))
    src:write("Rule Tst 2007 max - Mar Sun>=8 2:00 1:00 D\n",
      "Rule Tst 2007 max - Nov Sun>=1 2:00 0 S\n",
      "Zone Test/Slim -8:00 Tst P%sT\n")
    src:close()
    assert(os.execute("zic -b slim -d " .. dir .. "/out " .. dir .. "/src"))
    local path = dir .. "/out/Test/Slim"
    local instants = { epoch("2026-07-01 12:00:00"), epoch("2026-12-01 12:00:00"), epoch("2045-07-01 12:00:00"),
      epoch("2045-12-01 12:00:00"), epoch("2030-03-10 09:59:59"), epoch("2030-03-10 10:00:00") }
    local want = date_offsets(path, instants)
    with_dir(dir .. "/out", function()
      local z = assert(tz.zone("Test/Slim"))
      for i, t in ipairs(instants) do assert.equals(want[i], tz.offset(z, t), "at " .. t) end
    end)
    os.execute("rm -rf " .. dir)
    -- the rule's figures, by hand: -7 h in July, -8 h in December
    assert.same({ -25200, -28800, -25200, -28800, -28800, -25200 }, want)
  end)

  it("reads a TZif v3 file that holds nothing but a footer", function()
    -- RFC 8536 header: magic, version (3: hours outside 0..24 in the rule), 15 reserved bytes, six counts
    -- (isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt); one type
    -- (offset 0, not DST, name index 0) and "UTC\0" in both blocks. With
    -- no transition the footer rules every instant (RFC 8536 3.2); glibc
    -- uses type 0 for such a file, so the oracle is the rule itself, given
    -- to date as TZ.
    local function block()
      return "TZif3" .. string.rep("\0", 15) .. string.pack(">i4i4i4i4i4i4", 0, 0, 0, 0, 1, 4)
        .. string.pack(">i4BB", 0, 0, 0) .. "UTC\0"
    end
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/Test"))
    local f = assert(io.open(dir .. "/Test/Footer", "wb"))
    f:write(block(), block(), "\n<-03>3<-02>,M3.5.0/-2,M10.5.0/-1\n")   -- v3 times: negative hours
    f:close()
    local instants = { epoch("2041-01-15 12:00:00"), epoch("2041-06-15 12:00:00"), epoch("2041-03-31 00:59:59"),
      epoch("2041-03-31 01:00:00") }
    local want = date_offsets("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", instants)
    with_dir(dir, function()
      local z = assert(tz.zone("Test/Footer"))
      for i, t in ipairs(instants) do assert.equals(want[i], tz.offset(z, t), "at " .. t) end
    end)
    os.execute("rm -rf " .. dir)
    assert.same({ -10800, -7200, -10800, -7200 }, want)
  end)

  it("rejects a malformed footer with the zone's name", function()
    assert.is_nil((tz.posix("PST8PDT,M13.2.0,M11.1.0")))
    assert.matches("no daylight rule", select(2, tz.posix("PST8PDT")))
    assert.same({ std = -3 * 3600, text = "<-03>3" }, tz.posix("<-03>3"))
  end)
end)
