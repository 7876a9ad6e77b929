-- Crash safety: auto-invoice runs killed with SIGKILL at random moments,
-- then run to completion, register every sale exactly once.
local gigstack = require "gigstack"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"

local function write_sales(path, n)
  local f = assert(io.open(path, "w"))
  f:write("sale_id,customer_name,rfc,tax_system,zip,email,description,product_key,unit_key,"
    .. "quantity,unit_price,iva_rate,payment_form\n")
  for i = 1, n do
    f:write(string.format("K-%04d,CLIENTE SA DE CV,SAT970701NN3,601,06600,c@ejemplo.mx,Servicio %d,"
      .. "81111500,E48,1,%d.00,0.16,03\n", i, i, 100 + i))
  end
  f:close()
end

describe("crash safety", function()
  it("20 runs over 500 sales killed with SIGKILL, then one to completion: 500 payments and invoices once", function()
    local csv, db = os.tmpname(), os.tmpname()
    os.remove(db)
    write_sales(csv, 500)
    local server = io.popen("sh -c 'echo $$; exec " .. RUN .. " --serve-mock 127.0.0.1:0 --latency 20-40'")
    local pid = server:read("l")
    local url = server:read("l")
    local env = "env GIGSTACK_BASE_URL=" .. url .. " GIGSTACK_API_KEY=sk_test_mock "
    local cmd = env .. RUN .. " scripts/auto_invoice.lua " .. csv .. " --state " .. db .. " --concurrency 2"
    math.randomseed(42)
    local killed = 0
    for _ = 1, 20 do
      local code = support.sh("timeout -s KILL " .. string.format("%.2f", math.random(10, 60) / 100) .. " " .. cmd)
      if code == 137 then killed = killed + 1 end
    end
    local code, out = support.sh(cmd)
    local payments, invoices, keys, dups = 0, 0, {}, 0
    local run_ok, run_err = pcall(gigstack.run, function()
      local gs = gigstack.new{ api_key = "sk_test_mock", base_url = url }
      for p in gs.payments:each{ limit = 100 } do
        payments = payments + 1
        if keys[p.idempotency_key] then dups = dups + 1 end
        keys[p.idempotency_key] = true
      end
      invoices = gigstack.check(gs.invoices:list{ limit = 1 }).total_results
    end, { timeout = support.WATCHDOG })
    os.execute("kill -TERM " .. pid)
    server:read("a")
    server:close()
    os.remove(csv)
    os.execute("rm -f " .. db .. "*")
    print(string.format("# killed %d of 20 runs; final run: %s", killed, out:match("payments registered:[^\n]*")))
    assert.is_true(run_ok, tostring(run_err))
    assert.is_true(killed >= 10, "only " .. killed .. " runs were killed mid-way")
    assert.equals(0, code)
    assert.same({ 500, 500, 0 }, { payments, invoices, dups })
  end)
end)
