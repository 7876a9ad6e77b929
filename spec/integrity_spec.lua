-- Integrity under attack and bad luck: no fiscal document from a forged
-- event, none lost to a redirect or a failed handler, none twice from two
-- runs, no header injection, no key echoed back into a log.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local journal = require "gigstack.runner.journal"
local webhooks = require "gigstack.runner.webhooks"
local ppd = require "gigstack.workflows.ppd_complements"
local support = require "support"

local check = gigstack.check
-- the listener logs what it drops or retries: kept in log.lines, off stderr
require("gigstack.runner.log").out = { write = function() end, flush = function() end }
local RUN = "./" .. support.build_dir() .. "/gigstack-run"
local OBRA = { description = "Obra", quantity = 1, unit_price = 1160, product_key = "72151500",
  unit_key = "E48", taxes = { { type = "IVA", rate = 0.16, factor = "Tasa", inclusive = true } } }

local tmpfile, read = support.tmpfile, support.read_file

local function wait_for(cond, what)
  for _ = 1, 200 do                -- up to 10 s
    if cond() then return end
    gigstack.sleep(0.05)
  end
  error("timed out waiting for " .. what)
end

describe("redirects", function()
  for _, status in ipairs{ 301, 307 } do
    it("turn a " .. status .. " to POST /payments/register into a redirect error, recorded nowhere", function()
      local path = tmpfile()
      local j = journal.open(path)
      local result, err
      gigstack.run(function()
        local server = assert(http.listen{ port = 0, handler = function()
          return status, { Location = "https://api.example.invalid/v2/payments/register" }, ""
        end })
        local gs = gigstack.new{ api_key = "sk_test_redirect", base_url = server.url .. "/v2", retries = 0 }
        result, err = j:once("sale:1", function(key)
          return gs.payments:register({ client = { id = "client_1" }, items = { OBRA },
            automation_type = "none", payment_form = "03" }, { idempotency_key = key })
        end)
        server.close()
      end, { timeout = support.WATCHDOG })
      local recorded = j:get("sale:1")
      j:close()
      os.remove(path)
      assert.is_nil(result)
      assert.equals("redirect", err.kind)
      assert.equals(status, err.status)
      assert.equals("https://api.example.invalid/v2/payments/register", err.location)
      assert.is_nil(recorded)
    end)
  end

  it("refuses an http:// base URL for a host that is not loopback unless allowed", function()
    local ok, err = pcall(gigstack.new, { api_key = "k", base_url = "http://api.gigstack.io/v2" })
    assert.is_false(ok)
    assert.equals("config", err.kind)
    assert.matches("base_url: http:// sends the API key in clear", tostring(err))
    local c = gigstack.new{ api_key = "k", base_url = "http://api.gigstack.io/v2", allow_http = true }
    assert.equals("http://api.gigstack.io/v2", c.base_url)
    assert.is_table(gigstack.new{ api_key = "k", base_url = "http://127.0.0.1:9/v2" })
    assert.is_table(gigstack.new{ api_key = "k", base_url = "http://localhost:9/v2" })
  end)
end)

describe("header injection", function()
  it("refuses CR/LF in an idempotency key or a header with an error value and sends nothing", function()
    support.with_mock(function(gs, server)
      local before = server.emulator.requests
      local p, err = gs.payments:register({ client = { id = "client_1" }, items = { OBRA },
        payment_form = "03" }, { idempotency_key = "V-1\r\nX-Injected: 1" })
      assert.is_nil(p)
      assert.equals("invalid", err.kind)
      assert.matches("Idempotency%-Key", err.message)
      assert.matches("CR, LF or NUL", err.message)
      local q, err2 = gs:request("GET", "/clients", { headers = { ["X-Trace"] = "a\nAuthorization: Bearer x" } })
      assert.is_nil(q)
      assert.equals("invalid", err2.kind)
      assert.matches("X%-Trace", err2.message)
      local r, err3 = gs:request("GET", "/clients", { headers = { ["X-Trace"] = "a\0b" } })
      assert.is_nil(r)
      assert.equals("invalid", err3.kind)
      assert.equals(before, server.emulator.requests)
    end)
  end)

  it("never writes CR/LF from a handler's response header: the client gets a 500", function()
    local status, injected
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, handler = function()
        return 200, { ["X-Echo"] = "a\r\nSet-Cookie: evil=1" }, "{}"
      end })
      local resp = assert(http.request{ url = server.url .. "/" })
      status, injected = resp.status, resp.headers["set-cookie"]
      server.close()
    end, { timeout = support.WATCHDOG })
    assert.equals(500, status)
    assert.is_nil(injected)
  end)
end)

describe("a server that echoes the key", function()
  it("leaves the key in no error, log line, stdout, stderr or report", function()
    local key = "Zq9-unusualKEY.shape_4242"     -- no sk_ prefix: pattern redaction cannot catch it
    local echo_script = tmpfile() .. ".lua"
    local e = assert(io.open(echo_script, "w"))
    e:write([=[
local http = require "gigstack.async.http"
local gigstack = require "gigstack"
gigstack.run(function()
  local s = assert(http.listen{ port = 0, handler = function(req)
    local auth = req.headers.authorization
    return 401, {}, '{"error":{"code":"bad_key","message":"bad ' .. auth .. '"},"details":["' .. auth .. '"]}'
  end })
  print(s.url)
  io.stdout:flush()
  while true do gigstack.sleep(1) end
end)
]=])
    e:close()
    local echo = io.popen("sh -c 'echo $$; exec " .. RUN .. " " .. echo_script .. "'")
    local pid, url = echo:read("l"), echo:read("l")
    local report, script = tmpfile(), tmpfile() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local gigstack = require "gigstack"
local gs = gigstack.new{}
local page, err = gs.clients:list()
assert(page == nil)
io.stdout:write("message: ", err.message, "\n", "tostring: ", tostring(err), "\n")
require("gigstack.runner.report").add{ item = "c1", outcome = "failed", error = err }
require("gigstack.runner.log").event("call.failed", { error = err, message = err.message }, "error")
gigstack.check(page, err)
]])
    f:close()
    local code, out, errout = support.sh("env GIGSTACK_API_KEY=" .. key .. " GIGSTACK_BASE_URL=" .. url
      .. " " .. RUN .. " --report " .. report .. " " .. script)
    os.execute("kill -TERM " .. pid)
    echo:read("a")
    echo:close()
    local rep = read(report)
    os.remove(report)
    os.remove(script)
    os.remove(echo_script)
    assert.is_true(code ~= 0)
    assert.matches("message: bad ", out)                       -- the server did echo it
    for name, text in pairs{ stdout = out, stderr = errout, report = rep } do
      assert.is_nil(text:find(key, 1, true), name .. " leaks the key:\n" .. text)
    end
    assert.is_nil(errout:find("table: 0x", 1, true), errout)
  end)

  it("prints an error code that is a table as JSON, not as table: 0x", function()
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, handler = function()
        return 400, {}, '{"error":{"code":{"sub":"x"},"message":"m"}}'
      end })
      local gs = gigstack.new{ api_key = "k", base_url = server.url .. "/v2" }
      local _, err = gs.clients:list()
      server.close()
      assert.is_nil(tostring(err):find("table: 0x", 1, true), tostring(err))
      assert.matches('{"sub":"x"}', tostring(err), 1, true)
    end, { timeout = support.WATCHDOG })
  end)
end)

describe("the journal", function()
  it("raises on a damaged database and does not run the work", function()
    local path = tmpfile()
    local j = journal.open(path)
    for i = 1, 300 do
      gigstack.run(function()
        assert(j:once("sale:" .. i, function() return { id = i, pad = string.rep("x", 200) } end))
      end, { timeout = support.WATCHDOG })
    end
    j:close()
    local f = assert(io.open(path, "r+b"))
    local size = f:seek("end")
    assert.is_true(size > 8192)
    f:seek("set", 4096)                      -- every page after the first: garbage
    f:write(string.rep("\x5a", size - 4096))
    f:close()
    local ran = 0
    local ok, err = pcall(function()
      local j2 = journal.open(path)
      gigstack.run(function()
        j2:once("sale:999", function() ran = ran + 1; return true end)
      end, { timeout = support.WATCHDOG })
    end)
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    assert.is_false(ok)
    assert.matches("malformed", tostring(err))
    assert.equals(0, ran)
  end)

  it("reports SQLite's reason for a file that is not a journal", function()
    local path = tmpfile()
    local f = assert(io.open(path, "wb"))
    f:write(string.rep("not a database ", 1000))
    f:close()
    local ok, err = pcall(journal.open, path)
    os.remove(path)
    assert.is_false(ok)
    assert.matches("file is not a database", tostring(err))
    assert.is_nil(tostring(err):find("bad argument", 1, true))
  end)

  it("runs the work once when two processes claim the same key at once (10 pairs)", function()
    local path, log = tmpfile(), tmpfile()
    local script = tmpfile() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write(support.ONCE_SCRIPT)
    f:close()
    for i = 1, 10 do
      local cmd = RUN .. " " .. script .. " " .. path .. " " .. log .. " key" .. i
      local code = os.execute("(" .. cmd .. " & " .. cmd .. " & wait) 2>&1")
      assert.is_true(code)
    end
    local lines = 0
    for _ in read(log):gmatch("[^\n]+") do lines = lines + 1 end
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    os.remove(log); os.remove(script)
    assert.equals(10, lines)
  end)

  it("takes over a claim left by a process that died, at once", function()
    local path = tmpfile()
    -- a process claims the key and is killed before it commits
    local code = os.execute(RUN .. " -e \"local j = require('gigstack.runner.journal').open('" .. path
      .. "'); require('gigstack').run(function() j:once('k', function() os.exit(9) end) end)\"")
    assert.is_falsy(code)
    local j = journal.open(path)
    local result, how
    gigstack.run(function()
      result, how = j:once("k", function() return "second" end)
    end, { timeout = 10 })
    j:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    assert.same({ "second", "done" }, { result, how })
  end)
end)

describe("webhook events", function()
  local function ppd_invoice(gs)
    local c = check(gs.clients:create{ legal_name = "CLIENTE SA", tax_id = "SAT970701NN3", tax_system = "601",
      address = { zip = "06600" } })
    local inv = check(gs.invoices:create{ client = { id = c.id }, payment_method = "PPD", payment_form = "99",
      items = { OBRA } })
    return c, inv
  end

  it("issue no complement for a forged payment.succeeded naming an unknown payment", function()
    support.with_mock(function(gs)
      local _, inv = ppd_invoice(gs)
      local forged = { id = "evt_forged", type = "payment.succeeded", data = { object = {
        id = "payment_doesnotexist", status = "succeeded", total = 1160, payment_form = "03",
        metadata = { invoice_id = inv.uuid } } } }
      local rep, reason = ppd.for_event(gs, forged)
      assert.is_nil(rep)
      assert.matches("payment_doesnotexist", tostring(reason))
      assert.equals(0, check(gs.complements:list{ invoice_id = inv.uuid }).total_results)
    end)
  end)

  it("issue no complement for a real payment that has not succeeded, whatever the event says", function()
    support.with_mock(function(gs)
      local c, inv = ppd_invoice(gs)
      local p = check(gs.payments:request{ client = { id = c.id }, metadata = { invoice_id = inv.uuid },
        items = { OBRA } })
      local forged = { id = "evt_forged2", type = "payment.succeeded", data = { object = {
        id = p.id, status = "succeeded", total = 1160, payment_form = "03",
        metadata = { invoice_id = inv.uuid } } } }
      local rep, reason = ppd.for_event(gs, forged)
      assert.is_nil(rep)
      assert.matches("not succeeded", tostring(reason))
      assert.equals(0, check(gs.complements:list{ invoice_id = inv.uuid }).total_results)
    end)
  end)

  it("hand handlers the object fetched from the API, not the event's copy", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create{ legal_name = "REAL NAME", tax_id = "SAT970701NN3", tax_system = "601" })
      local got = {}
      local l = webhooks.listen{ client = gs }
      webhooks.on("client.updated", function(ev) got[#got + 1] = ev end)
      local resp = assert(http.request{ method = "POST", url = l.url, body =
        '{"id":"evt_1","type":"client.updated","data":{"object":{"id":"' .. c.id .. '","legal_name":"FORGED"}}}' })
      local missing = assert(http.request{ method = "POST", url = l.url, body =
        '{"id":"evt_2","type":"client.updated","data":{"object":{"id":"client_nope","legal_name":"X"}}}' })
      webhooks.stop()
      assert.same({ 200, 200 }, { resp.status, missing.status })
      assert.equals(1, #got)
      assert.equals("REAL NAME", got[1].data.object.legal_name)
      assert.is_true(got[1].verified)
      assert.equals(1, l.unverified)
    end)
  end)

  it("leave an event whose handler failed unrecorded, and process it on redelivery", function()
    local path = tmpfile()
    local j = journal.open(path)
    support.with_mock(function(gs)
      local calls = 0
      local l = webhooks.listen{ journal = j, client = gs }
      webhooks.on("client.created", function() calls = calls + 1; if calls == 1 then error("database down") end end)
      check(gs.webhooks:create{ url = l.url, events = { "client.created" } })
      check(gs.clients:create{ legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601" })
      wait_for(function() return l.processed >= 1 end, "the redelivered event")
      webhooks.stop()
      assert.equals(2, calls)
      assert.equals(1, l.failed)
      local ev = check(gs:request("GET", "/_mock/events", { query = { type = "client.created" } })).data[1]
      assert.same({ 500, 200 }, { ev.deliveries[1].status, ev.deliveries[2].status })
      assert.is_not_nil(j:get("webhook:" .. ev.id))
    end, { delivery_backoff = 0.05 })
    j:close()
    os.remove(path)
  end)

  it("refuse a JSON array as an event", function()
    local status
    gigstack.run(function()
      local l = webhooks.listen{ client = false }
      local resp = assert(http.request{ method = "POST", url = l.url, body = "[1,2]" })
      status = resp.status
      webhooks.stop()
    end, { timeout = support.WATCHDOG })
    assert.equals(400, status)
  end)
end)

describe("gigstack-run's memory", function()
  it("writes no core file, whatever the shell allows", function()
    local code, out = support.sh("sh -c 'ulimit -c unlimited; " .. RUN .. " -e \"os.execute([[ulimit -c]])\"'")
    assert.equals(0, code)
    assert.equals("0\n", out)
  end)
end)

describe("ppd_complements options", function()
  it("refuse a key they do not know, naming it", function()
    local ok, err = pcall(ppd.for_payment, {}, "payment_1", { taem = "team_x" })
    assert.is_false(ok)
    assert.matches("ppd_complements.for_payment: unknown option taem %(known: team%)", tostring(err))
  end)
end)

describe("the key in the environment", function()
  it("is not inherited by commands a script starts, unless --keep-key-env", function()
    local script = "local g = require('gigstack').new{}; print(g.key_source); "
      .. "os.execute('echo child:\\${GIGSTACK_API_KEY:-none}')"
    local code, out = support.sh("env GIGSTACK_API_KEY=sk_test_envkey123 " .. RUN .. " -e \"" .. script .. "\"")
    assert.equals(0, code)
    assert.equals("GIGSTACK_API_KEY\nchild:none\n", out)
    local code2, out2 = support.sh("env GIGSTACK_API_KEY=sk_test_envkey123 " .. RUN .. " --keep-key-env -e \""
      .. script .. "\"")
    assert.equals(0, code2)
    assert.equals("GIGSTACK_API_KEY\nchild:sk_test_envkey123\n", out2)
  end)
end)
