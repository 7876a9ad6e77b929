--- Receipts: money collected whose self-invoice is pending. List (with
-- the null entries the real API returns for removed receipts), get,
-- create, update, stamp (into an income invoice), cancel, delete.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local amounts = require "gigstack.mock.amounts"
local json = require "gigstack.async.json"

local M = {}

local STATUSES = { "pending", "open", "invoiced", "completed", "expired", "cancelled" }

function M.create(ctx, fields)
  local st = ctx.store
  local now = st:now()
  local r = { id = st:id("receipt"), object = "receipt", status = "pending", livemode = false,
    created_at = now, validUntil = (now + 30 * 86400) * 1000, team = ctx.team }
  for k, v in pairs(fields) do r[k] = v end
  st:insert(ctx.team, "receipts", r)
  ctx:event("receipt.created", r)
  return r
end

local function find(ctx, id)
  return ctx:find("receipts", id, "receipt")
end

local function from_body(ctx, body, creating)
  local c = check.new()
  local fields = {}
  local items = c:array(body, "items", "items", creating)
  if items then
    if #c.problems > 0 then c:done() end
    local out, lines = amounts.items(ctx, c, items)
    fields.items = out
    c:done()
    amounts.totals(fields, lines, body.currency or "MXN")
  end
  if body.client ~= nil then
    local spec = c:object(body, "client", "client")
    if spec and check.present(spec.id) then
      fields.client = ctx.store:get(ctx.team, "clients", tostring(spec.id))
      if not fields.client then wire.fail(404, "resource_not_found", "client " .. tostring(spec.id) .. " not found") end
    end
  end
  fields.currency = c:one_of(body, "currency", "currency", check.CURRENCIES, creating and "MXN" or nil)
  fields.payment_form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS)
  fields.status = c:one_of(body, "status", "status", STATUSES)
  c:done()
  fields.metadata = body.metadata
  fields.idempotency_key = body.idempotency_key
  return fields
end

function M.routes(route)
  route("GET", "^/receipts$", function(ctx)
    local q = ctx.query
    local env = ctx:list("receipts", function(r)
      return (not q.status or r.status == q.status) and (not q.client_id or (r.client and r.client.id == q.client_id))
    end)
    -- quirk: removed receipts leave null entries in the first page
    local removed = ctx.store:coll(ctx.team, "receipts_removed").order
    if not q.next and #removed > 0 then
      for _ = 1, math.min(#removed, 2) do env.data[#env.data + 1] = json.null end
    end
    return 200, env
  end)
  route("POST", "^/receipts$", function(ctx)
    local body = ctx:body()
    local key = body.idempotency_key
    local seen = key and ctx.store:coll(ctx.team, "receipt_keys").items[key]
    local original = seen and ctx.store:get(ctx.team, "receipts", seen.receipt_id)
    if original then return 200, wire.object(original, "Receipt already created (idempotent replay)") end
    local r = M.create(ctx, from_body(ctx, body, true))
    if key then ctx.store:insert(ctx.team, "receipt_keys", { id = key, receipt_id = r.id }) end
    return 200, wire.object(r, "Receipt created successfully")
  end)
  route("GET", "^/receipts/([^/]+)$", function(ctx, id) return 200, wire.object(find(ctx, id)) end)
  route("PUT", "^/receipts/([^/]+)$", function(ctx, id)
    local r = find(ctx, id)
    if r.status == "invoiced" or r.status == "cancelled" then
      wire.fail(409, "business_rule_violation", "receipt " .. id .. " is " .. r.status .. " and cannot change")
    end
    for k, v in pairs(from_body(ctx, ctx:body(), false)) do r[k] = v end
    ctx:event("receipt.updated", r)
    return 200, wire.object(r, "Receipt updated")
  end)
  route("POST", "^/receipts/([^/]+)/stamp$", function(ctx, id)
    local r = find(ctx, id)
    local body = ctx.req.body ~= "" and ctx:body() or {}
    if r.status == "invoiced" then wire.fail(409, "resource_conflict", "receipt " .. id .. " is already invoiced") end
    if r.status == "cancelled" then wire.fail(409, "business_rule_violation", "receipt " .. id .. " is cancelled") end
    local client = r.client
    if type(body.fiscal_information) == "table" then
      local fi = body.fiscal_information
      client = ctx.peers.clients.search(ctx, "tax_id", fi.tax_id or "")
        or ctx.peers.clients.create(ctx, { legal_name = fi.legal_name, tax_id = fi.tax_id,
          tax_system = fi.tax_system, address = { zip = fi.zip } }, "fiscal_information.")
    end
    if not client or not client.tax_id then
      local e = { id = ctx.store:id("cfdi_error"), receipt_id = id, code = "CFDI40145",
        message = "receptor without RFC: pass fiscal_information", created_at = ctx.store:now() }
      ctx.store:insert(ctx.team, "cfdi_errors", e)
      wire.fail(422, "cfdi_service_error", "cannot stamp receipt " .. id .. ": " .. e.message)
    end
    local inv = ctx.peers.invoices.issue(ctx, { id = r.payment_id, client = client,
      items = r.items, currency = r.currency, exchange_rate = 1, payment_form = r.payment_form or "01",
      subtotal = r.subtotal, taxes = r.taxes, withholding_taxes = r.withholding_taxes, total = r.total }, "PUE")
    r.status = "invoiced"
    r.invoice_id = inv.uuid
    r.invoice = { uuid = inv.uuid }
    r.invoiced_at = ctx.store:now()
    ctx:event("receipt.stamped", r)
    return 200, wire.object(r, "Receipt stamped")
  end)
  route("POST", "^/receipts/([^/]+)/cancel$", function(ctx, id)
    local r = find(ctx, id)
    if r.status == "invoiced" then wire.fail(409, "business_rule_violation", "cancel the invoice of receipt " .. id) end
    r.status = "cancelled"
    ctx:event("receipt.cancelled", r)
    return 200, wire.object(r, "Receipt cancelled")
  end)
  route("DELETE", "^/receipts/([^/]+)$", function(ctx, id)
    local r = find(ctx, id)
    if r.status == "invoiced" then wire.fail(409, "business_rule_violation", "receipt " .. id .. " is invoiced") end
    ctx.store:remove(ctx.team, "receipts", id)
    ctx.store:insert(ctx.team, "receipts_removed", { id = id })
    ctx:event("receipt.deleted", { id = id })
    return 200, wire.object({ id = id, deleted = true }, "Receipt deleted")
  end)
end

return M
