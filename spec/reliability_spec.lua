-- The reliability bar: 2,000 sales through the auto-invoice workflow
-- with 20 % mixed faults (reset-after-handler included) end exactly once.
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"
local FAULTS = "429=0.04,503=0.03,500=0.01,html=0.02,empty=0.01,reset_before=0.03,"
  .. "reset_after=0.03,stall=0.01,truncate=0.02"

local function write_sales(path, n)
  local f = assert(io.open(path, "w"))
  f:write("sale_id,customer_name,rfc,tax_system,zip,email,description,product_key,unit_key,"
    .. "quantity,unit_price,iva_rate,payment_form\n")
  for i = 1, n do
    f:write(string.format("R-%05d,CLIENTE %d SA DE CV,SAT970701NN3,601,06600,c%d@ejemplo.mx,"
      .. "Servicio %d,81111500,E48,%d,%d.%02d,0.16,03\n", i, i % 50, i, i, 1 + i % 3, 100 + i % 900, i % 100))
  end
  f:close()
end

describe("reliability", function()
  it("registers 2,000 sales under 20 % mixed faults: 2,000 payments and invoices, no duplicates, exit 0", function()
    local csv = os.tmpname()
    write_sales(csv, 2000)
    local code, out, err = support.sh("timeout 300 " .. RUN .. " --mock --faults '" .. FAULTS .. "' --seed 7 "
      .. "scripts/auto_invoice.lua " .. csv .. " --concurrency 32 --retries 12 --timeout 1")
    os.remove(csv)
    print("# " .. out:gsub("\n", "\n# "))
    assert.equals(0, code, err)
    assert.matches("payments registered: 2000", out)
    assert.matches("invoices issued:     2000", out)
    assert.matches("failures:            0", out)
    assert.matches("emulator:            2000 payments, 2000 invoices, 0 duplicate keys, 0 duplicate invoices", out)
    local faults = out:match("faults injected:%s+([^\n]+)")
    assert.matches("reset_after=%d+", faults)
    local total = 0
    for n in faults:gmatch("=(%d+)") do total = total + tonumber(n) end
    assert.is_true(total > 300, "only " .. total .. " faults injected")
  end)
end)
