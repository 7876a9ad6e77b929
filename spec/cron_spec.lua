-- gigstack-run as cron sees it (issue 16): schedules and listeners under
-- --mock, exit codes a scheduler can trust, one-line errors, the key
-- order (credentials.json of the gigstack CLI), nested gigstack.run,
-- signals and the grace period.
local support = require "support"
local json = require "gigstack.async.json"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

local function script(text)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- a private HOME holding the CLI's credentials file with the given mode
local function home_with(credentials, mode)
  local home = os.tmpname()
  os.remove(home)
  assert(os.execute("mkdir -p " .. home .. "/.config/gigstack"))
  local path = home .. "/.config/gigstack/credentials.json"
  local f = assert(io.open(path, "w"))
  f:write(credentials)
  f:close()
  assert(os.execute("chmod " .. mode .. " " .. path))
  return home, path
end

local LIST_JOB = [[
local gigstack = require "gigstack"
local gs = gigstack.new{}
gigstack.every("* * * * *", function()
  local page = gigstack.check(gs.payments:list{ limit = 5 })
  print("payments listed: " .. #page.data)
end)
]]

describe("gigstack-run --mock --once", function()
  it("runs an every-minute job against the emulator and exits 0", function()
    local path = script(LIST_JOB)
    local code, out, err = support.sh("timeout 20 " .. RUN .. " --mock --once " .. path)
    os.remove(path)
    assert.equals(0, code, err)
    assert.equals("payments listed: 0\n", out)   -- a fresh emulator holds no payment
  end)

  it("exits 3 when a due job raises, with one JSON line naming the job", function()
    local path = script([[
      local gigstack = require "gigstack"
      gigstack.every("* * * * *", function() error("job blew up") end)
    ]])
    local code, _, err = support.sh("timeout 20 " .. RUN .. " --mock --once --log-format json " .. path)
    os.remove(path)
    assert.equals(3, code, err)
    local l = lines(err)
    assert.equals(1, #l, err)
    local rec = assert(json.decode(l[1]))
    assert.equals("schedule.failed", rec.event)
    assert.equals("* * * * *", rec.job)
    assert.matches("job blew up$", rec.error)
    assert.matches("stack traceback", rec.traceback)   -- JSON mode carries it
  end)

  it("exits after the due jobs when the script also listens for webhooks", function()
    local path = script([[
      local gigstack = require "gigstack"
      local gs = gigstack.new{}
      gigstack.on("payment.succeeded", function() end)
      gigstack.every("* * * * *", function() print("clients: " .. #gigstack.check(gs.clients:list()).data) end)
    ]])
    local code, out, err = support.sh("timeout 20 " .. RUN .. " --mock --once " .. path)
    os.remove(path)
    assert.equals(0, code, err)             -- 124 would be the timeout: it stayed up
    assert.equals("clients: 2\n", out)      -- the documentation's two example clients
  end)
end)

describe("gigstack-run exit codes", function()
  it("--report to an unwritable path exits 2 before the script runs", function()
    local marker = os.tmpname()
    os.remove(marker)
    local code, out, err = support.sh(RUN .. " --mock --report /nonexistent/x.json -e 'io.open(\""
      .. marker .. "\", \"w\"):close()' scripts/auto_invoice.lua")
    local ran = io.open(marker)
    if ran then ran:close(); os.remove(marker) end
    assert.equals(2, code)
    assert.equals("", out)
    assert.equals("gigstack-run: --report: cannot write /nonexistent/x.json: No such file or directory\n", err)
    assert.is_nil(ran)                      -- the script (and so any request) never started
  end)

  it("--lock on an unusable path is a configuration error (2), not 'locked' (4)", function()
    local code, _, err = support.sh(RUN .. " --lock /nonexistent/run.lock -e 'print(1)'")
    assert.equals(2, code)
    assert.matches("cannot open lock file /nonexistent/run.lock", err)
  end)

  it("a bad key is one line with the 401 on stderr and exit 1 (3 in a batch)", function()
    local path = script([[
      local gigstack = require "gigstack"
      local gs = gigstack.new{ api_key = "sk_test_wrong" }
      gigstack.check(gs.payments:list{})
    ]])
    local code, _, err = support.sh(RUN .. " --mock --log-format text " .. path)
    os.remove(path)
    assert.equals(1, code)
    local l = lines(err)
    assert.equals(1, #l, err)
    assert.matches("^gigstack%-run: auth 401 %(unauthorized%) on GET /payments: invalid API key %[request req_%w+%]$",
      l[1])
    assert.is_nil(err:find("table: 0x", 1, true))
    local batch = script([[
      local gigstack = require "gigstack"
      local ai = require "gigstack.workflows.auto_invoice"
      local sales = assert(ai.read_sales("scripts/data/sales.csv"))
      ai.run(gigstack.new{ api_key = "sk_test_wrong", retries = 0 }, { sales[1], sales[2] })
    ]])
    local bcode, _, berr = support.sh(RUN .. " --mock --log-format text " .. batch)
    os.remove(batch)
    assert.equals(3, bcode)
    assert.matches("failed%s+2", berr)           -- the outcome table
    assert.is_nil(berr:find("table: 0x", 1, true))
  end)

  it("no key at all is one line and exit 2", function()
    local code, _, err = support.sh("env -u GIGSTACK_API_KEY -u GIGSTACK_PROFILE HOME=/nonexistent "
      .. RUN .. " --log-format text -e 'require(\"gigstack\").new{}'")
    assert.equals(2, code)
    assert.equals(1, #lines(err), err)
    assert.matches("^gigstack%-run: config: gigstack.new: api_key is required", err)
  end)

  it("a task that fails and nobody joins makes the run exit 1", function()
    local code, _, err = support.sh(RUN .. " --log-format text -e "
      .. "'require(\"gigstack\").spawn(function() error(\"lost task\") end)'")
    assert.equals(1, code)
    assert.matches("task%.failed error=%(command line%):1: lost task", err)
  end)

  it("SIGINT waits --grace for requests in flight, then exits 130", function()
    local path = script([[
      local gigstack = require "gigstack"
      local gs = gigstack.new{}
      gigstack.spawn(function()   -- a request the emulator answers only after 20 s
        gs:request("GET", "/clients", { headers = { ["X-Mock-Latency"] = "20000" }, retries = 0 })
      end)
      io.stdout:write("ready\n"); io.stdout:flush()
    ]])
    local p = io.popen("sh -c '" .. RUN .. " --mock --grace 0.5 --log-format text " .. path
      .. " 2>&1 & echo $!; wait $!; echo exit=$?'")
    local pid = p:read("l")
    assert.equals("ready", p:read("l"))
    local t0 = os.time()
    os.execute("kill -INT " .. pid)
    local rest = p:read("a")
    p:close()
    os.remove(path)
    assert.matches("SIGINT: starting no new requests; 1 in flight, 0.5 s to finish", rest)
    assert.matches("grace period over, stopping", rest)
    assert.matches("exit=130", rest)
    assert.is_true(os.time() - t0 < 15)     -- well before the 20 s answer
  end)
end)

describe("the key under --mock and from the gigstack CLI's credentials.json", function()
  it("--mock uses the emulator's key even when GIGSTACK_API_KEY is set, and says so", function()
    local path = script(LIST_JOB)
    local code, out, err = support.sh("GIGSTACK_API_KEY=sk_live_real_key_123 timeout 20 " .. RUN
      .. " --mock --once --log-format text " .. path)
    os.remove(path)
    assert.equals(0, code, err)
    assert.equals("payments listed: 0\n", out)
    assert.matches("mock%.env_ignored .*GIGSTACK_API_KEY is set and ignored", err)
    assert.is_nil(err:find("sk_live_real_key_123", 1, true))
  end)

  -- The script starts its own emulator (not --mock, whose key would win)
  -- and lists clients with whatever key the SDK finds.
  local LIST = "local g = require \"gigstack\"; "
    .. "local s = assert(require(\"gigstack.mock\").start{port = 0, examples = true}); "
    .. "local gs = g.new{ base_url = s.base_url }; print(gs.key_source, #g.check(gs.clients:list()).data); s.close()"

  it("takes the active profile's key when there is no other", function()
    local home = home_with(json.encode{ activeProfile = "work", profiles = {
      work = { apiKey = "sk_test_mock", environment = "test" },
      other = { apiKey = "sk_test_other", environment = "test" } } }, "600")
    local code, out, err = support.sh("env -u GIGSTACK_API_KEY -u GIGSTACK_PROFILE HOME=" .. home .. " "
      .. RUN .. " --log-format text -e '" .. LIST .. "'")
    assert.equals(0, code, err)
    assert.equals("credentials.json profile work\t2\n", out)   -- team_mock sees the 2 example clients
    -- --profile picks another one: team_other's key (another account, no clients)
    local pcode, pout, perr = support.sh("env -u GIGSTACK_API_KEY HOME=" .. home .. " " .. RUN
      .. " --profile other --log-format text -e '" .. LIST .. "'")
    assert.equals(0, pcode, perr)
    assert.equals("credentials.json profile other\t0\n", pout)
    local ucode, _, uerr = support.sh("env -u GIGSTACK_API_KEY HOME=" .. home .. " " .. RUN
      .. " --profile nope --log-format text -e '" .. LIST .. "'")
    os.execute("rm -rf " .. home)
    assert.equals(2, ucode)
    assert.matches('profile "nope" is not in .*credentials.json %(profiles: other, work%)', uerr)
  end)

  it("refuses a credentials file other users can read (0644)", function()
    local home, path = home_with(json.encode{ activeProfile = "work", profiles = {
      work = { apiKey = "sk_test_mock" } } }, "644")
    local code, out, err = support.sh("env -u GIGSTACK_API_KEY -u GIGSTACK_PROFILE HOME=" .. home .. " "
      .. RUN .. " --log-format text -e '" .. LIST .. "'")
    os.execute("rm -rf " .. home)
    assert.equals(2, code)
    assert.equals("", out)
    assert.equals("gigstack-run: config: gigstack.new: refusing " .. path .. ": it is readable by other users "
      .. "(mode 0644); run `chmod 600 " .. path .. "`\n", err)
    assert.is_nil(err:find("sk_test_mock", 1, true))
  end)

  it("GIGSTACK_API_KEY comes before the credentials file", function()
    local home = home_with(json.encode{ activeProfile = "w", profiles = { w = { apiKey = "sk_test_other" } } }, "600")
    local code, out, err = support.sh("env -u GIGSTACK_PROFILE GIGSTACK_API_KEY=sk_test_mock HOME=" .. home .. " "
      .. RUN .. " --log-format text -e '" .. LIST .. "'")
    os.execute("rm -rf " .. home)
    assert.equals(0, code, err)
    assert.equals("GIGSTACK_API_KEY\t2\n", out)
  end)
end)

describe("gigstack.run inside a script run by gigstack-run", function()
  it("runs fn and the tasks it spawns to completion in the running loop and returns", function()
    local path = script([[
      local gigstack = require "gigstack"
      local gs = gigstack.new{}
      local n = gigstack.run(function()
        gigstack.spawn(function() gigstack.sleep(0.2); print("child done") end)
        return #gigstack.check(gs.clients:list()).data
      end, { timeout = 60 })
      print("returned " .. n)
      local ok, err = pcall(gigstack.run, function() gigstack.sleep(30) end, { timeout = 0.2 })
      print(ok, err)
    ]])
    local code, out, err = support.sh("timeout 20 " .. RUN .. " --mock " .. path)
    os.remove(path)
    assert.equals(0, code, err)
    assert.equals("child done\nreturned 2\nfalse\twatchdog: gigstack.run did not finish within 0.2 s\n", out)
  end)
end)
