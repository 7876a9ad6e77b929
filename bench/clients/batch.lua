--- The batch client of `make bench`: every sale of a CSV registered as a
-- PUE payment (payments:register, the body auto-invoicing sends) through
-- gigstack.map at CONCURRENCY, against an emulator with injected latency.
-- Timed in-process from the first request to the last answer (the CSV is
-- read before). Prints one JSON line.
--   lua5.4 bench/clients/batch.lua BASE_URL SALES_CSV CONCURRENCY
local gigstack = require "gigstack"
local auto_invoice = require "gigstack.workflows.auto_invoice"
local core = require "gigstack.core"
local cjson = require "cjson"

local base, path, conc = arg[1], arg[2], math.tointeger(tonumber(arg[3] or ""))
if not (base and path and conc) then
  io.stderr:write("usage: batch.lua BASE_URL SALES_CSV CONCURRENCY\n")
  os.exit(2)
end
local sales, problems = auto_invoice.read_sales(path)
if not sales then
  io.stderr:write("batch.lua: ", table.concat(problems, "\n"), "\n")
  os.exit(2)
end

local ok_count, first_error, seconds = 0, nil, nil
gigstack.run(function()
  local gs = gigstack.new{ base_url = base, api_key = "sk_test_mock", concurrency = conc }
  local t0 = core.now()
  local results = gigstack.map(sales, conc, function(sale)
    return gigstack.check(gs.payments:register(auto_invoice.payment_body(sale)))
  end)
  seconds = (core.now() - t0) / 1000
  for _, r in ipairs(results) do
    if r[1] and type(r[2]) == "table" and r[2].id then
      ok_count = ok_count + 1
    else
      first_error = first_error or tostring(r[2])
    end
  end
end)
print(cjson.encode{ mode = "sdk_map", sales = #sales, registered = ok_count, concurrency = conc,
  seconds = seconds, errors = #sales - ok_count, first_error = first_error })
