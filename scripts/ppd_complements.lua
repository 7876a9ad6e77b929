--- Payment complements for PPD invoices. By default a sweep: every
-- succeeded payment naming a PPD invoice (metadata.invoice_id) without a
-- complement gets one. With --listen it stays up and reacts to
-- payment.succeeded webhooks (registered on gigstack for you).
--   gigstack-run scripts/ppd_complements.lua [--listen] [--state complements.db]
local gigstack = require "gigstack"
local ppd = require "gigstack.workflows.ppd_complements"

local args = { ... }
local listen, journal_path = false, nil
local i = 1
while args[i] do
  if args[i] == "--listen" then listen = true; i = i + 1
  elseif args[i] == "--state" then journal_path = args[i + 1]; i = i + 2
  else io.stderr:write("ppd_complements: unknown argument ", args[i], "\n"); os.exit(2) end
end

local gs = gigstack.new{}
local issued, failures = ppd.sweep(gs)
print(string.format("complements issued: %d, failures: %d", issued, #failures))
for _, f in ipairs(failures) do print("  payment " .. f.payment .. ": " .. tostring(f.error)) end
if listen then
  local journal = journal_path and require("gigstack.runner.journal").open(journal_path)
  local hooks = gigstack.on("payment.succeeded", function(ev)
    local rep = ppd.for_payment(gs, ev.data.object)
    if rep then print("complement " .. rep.uuid .. " for payment " .. tostring(ev.data.object.id)) end
  end, { journal = journal })
  gigstack.check(gs.webhooks:create{ url = hooks.url, events = { "payment.succeeded" } })
  print("listening at " .. hooks.url .. " (Ctrl-C stops)")
end
