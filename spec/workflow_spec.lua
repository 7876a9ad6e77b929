-- The auto-invoice workflow and gigstack-run end to end.
local gigstack = require "gigstack"
local auto_invoice = require "gigstack.workflows.auto_invoice"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"
local http_request = require("gigstack.async.http").request
local SALES = "scripts/data/sales.csv"

describe("auto-invoice workflow", function()
  it("registers every sample sale once, even when run twice against the same emulator", function()
    local sales = assert(auto_invoice.read_sales(SALES))
    assert.is_true(#sales >= 50)
    support.with_mock(function(gs)
      local first = auto_invoice.run(gs, sales, { concurrency = 8 })
      assert.same({ #sales, #sales, 0 }, { first.payments, first.invoices, #first.failures })
      local second = auto_invoice.run(gs, sales, { concurrency = 8 })
      assert.equals(0, #second.failures)
      assert.equals(first.total_cents, second.total_cents)
      assert.equals(#sales, gigstack.check(gs.payments:list{ limit = 1 }).total_results)
      assert.equals(#sales, gigstack.check(gs.invoices:list{ limit = 1 }).total_results)
    end)
  end)

  it("reports bad sales rows with their line and field before any request", function()
    local csv = require "gigstack.runner.csv"
    local rows = assert(csv.parse("sale_id,customer_name,rfc,tax_system,zip,email,description,"
      .. "product_key,unit_key,quantity,unit_price,iva_rate,payment_form\n"
      .. "S1,Ana,ANA800101AB1,612,06600,a@b.mx,x,81111500,E48,0,12.x,0.16,03\n"))
    local sales, problems = auto_invoice.sales_from_rows(rows)
    assert.is_nil(sales)
    assert.matches("line 2: unit_price", problems[1])
    assert.matches("line 2: quantity", problems[2])
  end)
end)

describe("gigstack-run", function()
  it("runs the demo against the embedded emulator and prints the summary", function()
    local code, out = support.sh(RUN .. " --mock scripts/auto_invoice.lua " .. SALES)
    assert.equals(0, code)
    assert.matches("sales read:%s+60", out)
    assert.matches("payments registered:%s+60", out)
    assert.matches("invoices issued:%s+60", out)
    assert.matches("failures:%s+0", out)
  end)

  it("exits 1 with one line on a script error (traceback with --debug) and 2 on a usage error", function()
    local cmd = " --log-format text -e 'local function f() error(\"boom\") end f()'"
    local code, _, err = support.sh(RUN .. cmd)
    assert.equals(1, code)
    assert.equals("gigstack-run: (command line):1: boom\n", err)
    local dcode, _, derr = support.sh(RUN .. " --debug" .. cmd)
    assert.equals(1, dcode)
    assert.matches("boom\nstack traceback:", derr)
    local jcode, _, jerr = support.sh(RUN .. " --log-format json -e 'error(\"boom\")'")
    assert.equals(1, jcode)
    local rec = assert(require("gigstack.async.json").decode(jerr))   -- one JSON line
    assert.equals("run.failed", rec.event)
    assert.matches("boom", rec.error)
    assert.matches("stack traceback", rec.traceback)
    local ucode, _, uerr = support.sh(RUN .. " --no-such-flag")
    assert.equals(2, ucode)
    assert.matches("unknown option", uerr)
  end)

  it("passes arguments to the script in arg", function()
    local tmp = os.tmpname()
    local f = io.open(tmp, "w")
    f:write("print(arg[1] .. '+' .. select(2, ...))\n")
    f:close()
    local code, out = support.sh(RUN .. " " .. tmp .. " uno dos")
    os.remove(tmp)
    assert.equals(0, code)
    assert.equals("uno+dos\n", out)
  end)

  it("serves the emulator standalone until SIGTERM", function()
    local p = io.popen("sh -c 'echo $$; exec " .. RUN .. " --serve-mock 127.0.0.1:0'")
    local pid = p:read("l")
    local url = p:read("l")
    local status, body
    -- the child is stopped before any assertion, so a failure cannot leave it running
    local run_ok, run_err = pcall(gigstack.run, function()
      local r = assert(http_request{ url = url .. "/clients", timeout = 5,
        headers = { Authorization = "Bearer sk_test_mock" } })
      status, body = r.status, r.body
    end, { timeout = 10 })
    os.execute("kill -TERM " .. pid)
    p:read("a")
    local ok, how, code = p:close()
    assert.is_true(run_ok, tostring(run_err))
    assert.matches("^http://127%.0%.0%.1:%d+/v2$", url)
    assert.equals(200, status)
    assert.matches('"total_results":2', body)   -- the documentation's example clients
    assert.same({ true, "exit", 0 }, { ok, how, code })
  end)
end)

describe("gigstack-run --mock-state", function()
  it("keeps the emulator's state in a JSON file between runs", function()
    local state = os.tmpname()
    os.remove(state)
    local create = " -e 'local g = require \"gigstack\".new{}; assert(g.clients:create{ legal_name = \"A\", "
      .. "tax_id = \"CAMA911215CJ0\", tax_system = \"612\" }); "
      .. "print(g.clients:search(\"CAMA911215CJ0\").total_results)'"
    local c1, o1 = support.sh(RUN .. " --mock-state " .. state .. create)
    local c2, o2 = support.sh(RUN .. " --mock-state " .. state .. create)
    local f = assert(io.open(state))
    local text = f:read("a")
    f:close()
    os.remove(state)
    assert.same({ 0, 0 }, { c1, c2 })
    assert.equals(2, tonumber(o1))          -- the documentation's example client has this RFC too
    assert.equals(3, tonumber(o2))          -- the first run's client is still there
    assert.matches('"api_keys"', text)
  end)
end)

describe("auto-invoice from JSON", function()
  it("reads sales from a JSON file with the same checks", function()
    local code, out = support.sh(RUN .. " --mock scripts/auto_invoice.lua scripts/data/sales.json")
    assert.equals(0, code)
    assert.matches("sales read:%s+2", out)
    assert.matches("invoices issued:%s+2", out)
    assert.matches("total invoiced:%s+%$4000%.68 MXN", out)   -- 3148 + 503.68 IVA + 349 (IVA 0)
  end)
end)
