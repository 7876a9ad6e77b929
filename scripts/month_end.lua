--- Month-end close: stamp pending receipts, export the month's invoices
-- and payments to CSV, list payment complements owed before the 5th.
--   gigstack-run scripts/month_end.lua 2026-11 [out_dir] [--no-stamp]
local gigstack = require "gigstack"
local month_end = require "gigstack.workflows.month_end"

local args = { ... }
local month = args[1] or os.date("!%Y-%m")
local dir, stamp = ".", true
for i = 2, #args do
  if args[i] == "--no-stamp" then stamp = false else dir = args[i] end
end
local s = month_end.run(gigstack.new{}, { month = month, dir = dir, stamp = stamp })
print(string.format("month %s: %d receipts stamped, %d left pending, %d invoices and %d payments exported",
  month, s.receipts_stamped, s.receipts_pending, s.invoices, s.payments))
print(string.format("complements owed (deadline %s): %d", #s.owed > 0 and s.owed[1].deadline or "-", #s.owed))
for _, o in ipairs(s.owed) do print(string.format("  payment %s -> invoice %s, %s", o.payment, o.invoice, o.amount)) end
for _, f in ipairs(s.files or {}) do print("wrote " .. f) end
