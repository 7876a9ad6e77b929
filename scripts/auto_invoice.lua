--- Register a day's sales as payments and let gigstack issue the PUE
-- invoices.
--   gigstack-run --mock scripts/auto_invoice.lua scripts/data/sales.csv
--   GIGSTACK_API_KEY=... gigstack-run scripts/auto_invoice.lua sales.csv
-- Exit code: 0 all sales invoiced, 1 some failed, 2 bad input file.
local gigstack = require "gigstack"
local auto_invoice = require "gigstack.workflows.auto_invoice"
local money = require "gigstack.money"

local path = arg[1] or "scripts/data/sales.csv"
local concurrency = tonumber(arg[2] or "") or 8

local sales, problems = auto_invoice.read_sales(path)
if not sales then
  io.stderr:write("auto_invoice: cannot use ", path, ":\n  ", table.concat(problems, "\n  "), "\n")
  os.exit(2)
end

local gs = gigstack.new{}
local s = auto_invoice.run(gs, sales, { concurrency = concurrency })

print(string.format("sales read:          %d", s.sales))
print(string.format("payments registered: %d", s.payments))
print(string.format("invoices issued:     %d", s.invoices))
print(string.format("total invoiced:      $%s MXN", money.format(s.total_cents)))
print(string.format("failures:            %d", #s.failures))
for _, f in ipairs(s.failures) do
  print(string.format("  sale %s: %s", f.sale, tostring(f.error)))
end
if #s.failures > 0 then os.exit(1) end
