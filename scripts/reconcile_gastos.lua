--- Reconcile gastos: the month's CFDIs received (gigstack's SAT download
-- service) against the payments made to suppliers (a bank export CSV
-- with date, rfc, amount[, currency, reference]); writes
-- gastos-<month>.csv and .json and lists what does not match.
--   gigstack-run scripts/reconcile_gastos.lua 2026-10 pagos.csv [out_dir] [--activate]
-- --activate turns the SAT download service on first when the team's
-- plan includes it (downloads are charged per XML on the live API).
local gigstack = require "gigstack"
local reconcile = require "gigstack.workflows.reconcile_gastos"

local args = { ... }
local month, file = args[1], args[2]
if not month or not file then
  io.stderr:write("usage: reconcile_gastos.lua YYYY-MM payments.csv [out_dir] [--activate]\n")
  os.exit(2)
end
local dir, activate = ".", false
for i = 3, #args do
  if args[i] == "--activate" then activate = true else dir = args[i] end
end
local gs = gigstack.new{}
if activate then
  local st = gigstack.check(gs.sat_download:status())
  if st.status == "needs_activation" then gigstack.check(gs.sat_download:activate()) end
end
local r = reconcile.run(gs, { month = month, payments_file = file, dir = dir })
print(string.format("month %s: %d matched, %d CFDIs not paid, %d payments without a CFDI, "
  .. "%d cancelled CFDIs, %d cancelled CFDIs paid", month, #r.matched, #r.unmatched_cfdis,
  #r.unmatched_payments, #r.cancelled, #r.paid_cancelled))
for _, l in ipairs(r.unmatched_cfdis) do
  print(string.format("  not paid: %s %s %s %s", l.issue_date:sub(1, 10), l.issuer_rfc, l.total, l.uuid))
end
for _, l in ipairs(r.unmatched_payments) do
  print(string.format("  no CFDI:  %s %s %s %s", l.payment_date, l.issuer_rfc, l.payment_amount, l.payment_reference))
end
for _, l in ipairs(r.paid_cancelled) do
  print(string.format("  PAID BUT CANCELLED: %s %s %s", l.issuer_rfc, l.total, l.uuid))
end
for _, f in ipairs(r.files or {}) do print("wrote " .. f) end
