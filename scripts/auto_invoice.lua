--- Register a day's sales as payments and let gigstack issue the PUE
-- invoices.
--   gigstack-run --mock scripts/auto_invoice.lua scripts/data/sales.csv
--   GIGSTACK_API_KEY=... gigstack-run scripts/auto_invoice.lua sales.csv \
--       [--concurrency 8] [--retries 6] [--timeout 30] [--state journal.db]
--   gigstack-run --journal postgres://... scripts/auto_invoice.lua sales.csv --batch 2026-11
--       (several runners, on several machines, split the batch between them)
--   gigstack-run scripts/auto_invoice.lua --from-payments   (succeeded payments without invoice)
-- Exit code (gigstack-run): 0 all sales invoiced, 3 some failed (see
-- --report FILE), 2 bad input.
local gigstack = require "gigstack"
local auto_invoice = require "gigstack.workflows.auto_invoice"
local money = require "gigstack.fiscal.money"
local client = require "gigstack.client"

local args = { ... }
local path, opts = nil, { concurrency = 8, retries = 6, timeout = 30 }
local journal_path, batch
local i = 1
while args[i] do
  local name = args[i]:match("^%-%-(%w+)$")
  if name == "state" then      -- --state FILE|postgres://...: the journal (no repeats after a crash)
    journal_path = args[i + 1]
    i = i + 2
  elseif name == "batch" then  -- --batch NAME: share the sales with the other runners of NAME
    batch = args[i + 1]
    if not batch or batch == "" then
      io.stderr:write("auto_invoice: --batch needs a name\n")
      os.exit(2)
    end
    i = i + 2
  elseif args[i] == "--from-payments" then   -- invoice succeeded payments that have none
    local s = auto_invoice.from_payments(gigstack.new{ retries = opts.retries,
      concurrency = opts.concurrency }, { concurrency = opts.concurrency })
    print(string.format("payments invoiced: %d, already invoiced: %d, failures: %d", s.invoiced, s.skipped,
      #s.failures))
    return
  elseif name and opts[name] then
    opts[name] = tonumber(args[i + 1] or "")
    if not opts[name] then
      io.stderr:write("auto_invoice: --", name, " needs a number\n")
      os.exit(2)
    end
    i = i + 2
  else
    path = args[i]
    i = i + 1
  end
end
path = path or "scripts/data/sales.csv"

local sales, problems = auto_invoice.read_sales(path)
if not sales then
  io.stderr:write("auto_invoice: cannot use ", path, ":\n  ", table.concat(problems, "\n  "), "\n")
  os.exit(2)
end

-- the client's own limit follows --concurrency (its default is 16)
local gs = gigstack.new{ retries = opts.retries, timeout = opts.timeout, concurrency = opts.concurrency }
local jmod = require "gigstack.runner.journal"
local journal = journal_path and jmod.open(journal_path) or jmod.default()   -- else --journal / $GIGSTACK_JOURNAL_URL
if batch and not journal then
  io.stderr:write("auto_invoice: --batch needs a journal (--state, --journal or GIGSTACK_JOURNAL_URL)\n")
  os.exit(2)
end
local s = auto_invoice.run(gs, sales, { concurrency = opts.concurrency, journal = journal, batch = batch })

print(string.format("sales read:          %d", s.sales))
print(string.format("payments registered: %d", s.payments))
print(string.format("invoices issued:     %d", s.invoices))
print(string.format("total invoiced:      $%s MXN", money.format(s.total_cents)))
print(string.format("failures:            %d", #s.failures))
if batch then
  print(string.format("this runner:         %d of %d sales (%d by other runners) as %s", s.sales - s.elsewhere,
    s.sales, s.elsewhere, require("gigstack.core").owner_self()))
end
for _, f in ipairs(s.failures) do
  print(string.format("  sale %s: %s", f.sale, tostring(f.error)))
end
local mock = client.defaults.mock
if mock then   -- running on the embedded emulator: show what it holds
  local st = mock.emulator:stats()
  print(string.format("emulator:            %d payments, %d invoices, %d duplicate keys, "
    .. "%d duplicate invoices", st.payments, st.invoices, st.duplicate_keys, st.duplicate_invoices))
  local faults = mock.emulator.faults:summary()
  if faults ~= "none" then print(string.format("faults injected:     %s", faults)) end
end
-- failed sales are in gigstack.runner.report: gigstack-run exits 3 for them
