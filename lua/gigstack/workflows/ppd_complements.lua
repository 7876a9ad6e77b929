--- Payment complements for PPD invoices: when money for a PPD invoice
-- arrives, issue its complement (REP) for the amount received, never
-- more than the invoice's remaining balance, exactly once (the
-- idempotency key comes from the payment).
local gigstack = require "gigstack"
local money = require "gigstack.fiscal.money"
local options = require "gigstack.workflows.options"

local M = {}

-- A lookup that found nothing is a reason to do nothing; any other
-- failure (network, 5xx) is raised, so the caller retries later.
local function fetch(what, obj, err)
  if obj then return obj end
  if err and err.kind == "not_found" then return nil, what .. " not found" end
  gigstack.check(nil, err)
end

--- Issue the complement for a payment (its id, or an object with an id).
-- The payment is fetched from the API, never taken from the caller or an
-- event: it must have succeeded and name, in metadata.invoice_id, a PPD
-- invoice with a balance; the amount, payment form and date are the
-- API's. Exactly once: the idempotency key comes from the payment id.
-- Returns the complement, or nil, reason when there is nothing to do.
function M.for_payment(gs, payment, opts)
  opts = options.check("ppd_complements.for_payment", opts, { "team" })
  local id = type(payment) == "table" and payment.id or payment
  if type(id) ~= "string" or id == "" then return nil, "a payment id is required" end
  local p, why = fetch("payment " .. id, gs.payments:get(id, { team = opts.team }))
  if not p then return nil, why end
  if p.status ~= "succeeded" then
    return nil, "payment " .. id .. " has not succeeded (status " .. tostring(p.status) .. ")"
  end
  local uuid = type(p.metadata) == "table" and p.metadata.invoice_id
  if type(uuid) ~= "string" then return nil, "payment " .. id .. " names no invoice (metadata.invoice_id)" end
  local form = p.payment_form
  if type(form) ~= "string" or form == "99" then
    return nil, "payment " .. id .. ": payment form " .. tostring(form)
      .. " cannot go in a complement (FormaDePagoP is never 99)"
  end
  local inv
  inv, why = fetch("invoice " .. uuid, gs.invoices:get(uuid, { team = opts.team }))
  if not inv then return nil, why end
  if inv.payment_method ~= "PPD" then return nil, "invoice " .. uuid .. " is not PPD" end
  local balance = money.cents(tostring(inv.last_balance)) or 0
  local paid = money.cents(tostring(p.total)) or 0
  if balance <= 0 then return nil, "invoice " .. uuid .. " is already paid in full" end
  local amount = math.min(paid, balance)
  return gigstack.check(gs.complements:create({ invoice_id = uuid, amount = money.json(amount),
    payment_form = form, payment_id = p.id },
    { team = opts.team, idempotency_key = "complement:" .. tostring(p.id) }))
end

--- The complement for a payment.succeeded event: the event only says
-- which payment to look at (see for_payment).
function M.for_event(gs, ev, opts)
  opts = options.check("ppd_complements.for_event", opts, { "team" })
  local obj = type(ev) == "table" and type(ev.data) == "table" and ev.data.object
  if type(obj) ~= "table" or type(obj.id) ~= "string" then return nil, "the event names no payment id" end
  return M.for_payment(gs, obj.id, opts)
end

--- Issue every complement still owed: succeeded payments naming a PPD
-- invoice (metadata.invoice_id) that no complement covers yet. Returns
-- the number issued and the failures.
function M.sweep(gs, opts)
  opts = options.check("ppd_complements.sweep", opts, { "team" })
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
