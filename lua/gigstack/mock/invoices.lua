--- Income invoices (CFDI type I) issued by payment automations, and
-- GET /invoices/income (list, get).
local wire = require "gigstack.mock.wire"
local json = require "gigstack.json"

local M = {}

--- Issue an income invoice for a payment. method is "PUE" or "PPD".
function M.issue(ctx, payment, method)
  local st = ctx.store
  local team = st.teams[ctx.team]
  team.folio = (team.folio or 0) + 1
  local uuid = st:uuid()
  local inv = {
    id = uuid, uuid = uuid, object = "invoice", invoice_type = "I", status = "valid",
    series = "GS", folio_number = team.folio, client = payment.client,
    items = payment.items, currency = payment.currency, exchange_rate = payment.exchange_rate,
    payment_method = method, payment_form = method == "PUE" and payment.payment_form or "99",
    use = payment.client.use or "G03", subtotal = payment.subtotal, taxes = payment.taxes,
    withholding_taxes = payment.withholding_taxes, total = payment.total,
    last_balance = method == "PPD" and payment.total or json.raw("0.00"),
    payment_complements = 0, payment_id = payment.id, created_at = st:now(),
    livemode = false, team = ctx.team,
  }
  return st:insert(ctx.team, "invoices", inv)
end

function M.routes(route)
  route("GET", "^/invoices/income$", function(ctx)
    local status, client_id = ctx.query.status, ctx.query.client_id
    return 200, ctx:list("invoices", function(inv)
      return (not status or inv.status == status)
        and (not client_id or (inv.client and inv.client.id == client_id))
    end)
  end)
  route("GET", "^/invoices/income/([^/]+)$", function(ctx, uuid)
    local inv = ctx.store:get(ctx.team, "invoices", uuid)
    if not inv then wire.fail(404, "resource_not_found", "invoice " .. uuid .. " not found") end
    return 200, wire.object(inv)
  end)
end

return M
