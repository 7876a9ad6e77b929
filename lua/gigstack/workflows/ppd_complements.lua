--- Payment complements for PPD invoices: when money for a PPD invoice
-- arrives, issue its complement (REP) for the amount received, never
-- more than the invoice's remaining balance, exactly once (the
-- idempotency key comes from the payment).
local gigstack = require "gigstack"
local money = require "gigstack.fiscal.money"

local M = {}

--- Issue the complement for `payment` (a payment object whose
-- metadata.invoice_id names the PPD invoice). Returns the complement, or
-- nil, reason when there is nothing to do.
function M.for_payment(gs, payment, opts)
  opts = opts or {}
  local uuid = type(payment.metadata) == "table" and payment.metadata.invoice_id
  if not uuid then return nil, "payment " .. tostring(payment.id) .. " names no invoice (metadata.invoice_id)" end
  local inv, err = gs.invoices:get(uuid, { team = opts.team })
  if not inv then return nil, err end
  if inv.payment_method ~= "PPD" then return nil, "invoice " .. uuid .. " is not PPD" end
  local balance = money.cents(tostring(inv.last_balance)) or 0
  local paid = money.cents(tostring(payment.total)) or 0
  if balance <= 0 then return nil, "invoice " .. uuid .. " is already paid in full" end
  local amount = math.min(paid, balance)
  return gigstack.check(gs.complements:create({ invoice_id = uuid, amount = money.json(amount),
    payment_form = payment.payment_form, payment_id = payment.id },
    { team = opts.team, idempotency_key = "complement:" .. tostring(payment.id) }))
end

--- Issue every complement still owed: succeeded payments naming a PPD
-- invoice (metadata.invoice_id) that no complement covers yet. Returns
-- the number issued and the failures.
function M.sweep(gs, opts)
  opts = opts or {}
  local covered = {}
  for rep in gs.complements:each{ limit = 100, team = opts.team } do
    if rep.payment_id then covered[rep.payment_id] = true end
  end
  local issued, failures = 0, {}
  for p in gs.payments:each{ limit = 100, status = "succeeded", team = opts.team } do
    if not covered[p.id] and type(p.metadata) == "table" and p.metadata.invoice_id then
      local ok, rep = pcall(M.for_payment, gs, p, opts)
      if ok and rep then issued = issued + 1
      elseif not ok then failures[#failures + 1] = { payment = p.id, error = rep } end
    end
  end
  return issued, failures
end

return M
