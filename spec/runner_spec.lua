-- gigstack-run as a cron-grade runner: dry run, lock, report, exit codes.
local support = require "support"
local json = require "gigstack.async.json"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  os.remove(path)
  return text
end

describe("gigstack-run", function()
  it("--serve-mock raises the collector's pause to 400; --mock leaves a script Lua's default", function()
    -- the first write to stdout (the emulator's URL, after the tuning)
    -- reports the pause in force and ends the process
    local init = "local mt = getmetatable(io.stdout).__index; local w = mt.write; "
      .. "mt.write = function() w(io.stderr, 'pause ', collectgarbage('setpause', 0), '\\n'); os.exit(0) end"
    local code, _, err = support.sh("timeout 20 env LUA_INIT_5_4=\"" .. init .. "\" " .. RUN
      .. " --serve-mock 127.0.0.1:0")
    assert.equals(0, code)
    assert.matches("pause 400\n", err)
    local mcode, out = support.sh(RUN .. " --mock -e 'io.write(\"pause \", collectgarbage(\"setpause\", 0))'")
    assert.equals(0, mcode)
    assert.equals("pause 200", out)
  end)

  it("--dry-run performs no write: the emulator receives none, each write is logged", function()
    local code, out, err = support.sh(RUN .. " --mock --dry-run --log-format json scripts/auto_invoice.lua")
    assert.equals(0, code)
    assert.matches("emulator:%s+0 payments, 0 invoices", out)
    local writes = 0
    for line in err:gmatch("[^\n]+") do
      local rec = assert(json.decode(line))
      if rec.event == "dry_run.write" then
        writes = writes + 1
        assert.equals("POST", rec.method)
        assert.equals("/payments/register", rec.path)
        assert.is_nil(line:find("sk_test_mock", 1, true))
      end
    end
    assert.equals(60, writes)
  end)

  it("--report writes each item's outcome as CSV or JSON; failed items make exit code 3", function()
    local csv = os.tmpname() .. ".csv"
    local code = support.sh(RUN .. " --mock --report " .. csv .. " scripts/auto_invoice.lua")
    assert.equals(0, code)
    local text = read(csv)
    assert.matches("^item,outcome,", text)
    local rows = 0
    for line in text:gmatch("[^\n]+") do
      if line:match("^V%-2026") then rows = rows + 1; assert.matches("^[^,]+,done,", line) end
    end
    assert.equals(60, rows)
    local path = os.tmpname() .. ".json"
    local fcode, out = support.sh(RUN .. " --mock --faults 503=1 --report " .. path
      .. " scripts/auto_invoice.lua --retries 0")
    assert.equals(3, fcode)
    assert.matches("failures:%s+60", out)
    local items = assert(json.decode(read(path)))
    assert.equals(60, #items)
    assert.equals("failed", items[1].outcome)
    assert.matches("503", items[1].error)
  end)

  it("--lock refuses a second run while the first holds the lock (exit 4)", function()
    local lock = os.tmpname()
    local code, out = support.sh(RUN .. " --lock " .. lock .. " -e 'os.execute(\"" .. RUN .. " --lock " .. lock
      .. " -e \\\"print(1)\\\"; echo inner=$?\")'")
    os.remove(lock)
    assert.equals(0, code)
    assert.matches("inner=4", out)
  end)

  it("--once runs due schedules and exits; without it the process stays for them", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local gigstack = require "gigstack"
      gigstack.every("* * * * *", function() print("ran every minute") end)
      gigstack.every("0 0 31 2 *", function() print("never") end)
    ]])
    f:close()
    local code, out = support.sh("timeout 10 " .. RUN .. " --once " .. script)
    local code2 = support.sh("timeout 1 " .. RUN .. " " .. script)
    os.remove(script)
    assert.equals(0, code)
    assert.equals("ran every minute\n", out)
    assert.equals(124, code2)          -- still waiting for its next tick when timeout stopped it
  end)
end)
