--- Payments of both documentation generations:
--   older  POST /v2/payments            (clientId | client | email, item `total`
--                                         in units, response `amount` in cents)
--   newer  POST /v2/payments/register   (client.search + auto_create,
--                                         automation_type, idempotency_key)
-- and GET /payments, GET /payments/{id}.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local clients = require "gigstack.mock.clients"
local invoices = require "gigstack.mock.invoices"
local money = require "gigstack.money"
local json = require "gigstack.json"
local decimal = require "gigstack.decimal"
local sat = require "gigstack.sat"
local tax = require "gigstack.tax"

local M = {}

--- Validate one register item's quantity and taxes, then compute its
-- amounts with gigstack.tax (the SAT's per-concept rounding, in cents).
local function line_amounts(c, item, path, price_cents)
  local qty = item.quantity
  if qty == nil then qty = 1 end
  if type(qty) ~= "number" then
    c:add(path .. ".quantity", "must be a number"); qty = nil
  elseif qty <= 0 then
    c:add(path .. ".quantity", "must be greater than 0"); qty = nil
  end
  local taxes = item.taxes
  if taxes ~= nil and taxes ~= json.null and type(taxes) ~= "table" then
    c:add(path .. ".taxes", "must be an array"); taxes = nil
  end
  local specs, inclusive = {}, {}
  for i, t in ipairs(type(taxes) == "table" and taxes or {}) do
    local tp = path .. ".taxes[" .. i .. "]"
    local impuesto = sat.impuesto(t.type)
    local factor = t.factor or "Tasa"
    local withholding = t.withholding == true
    if not impuesto then
      c:add(tp .. ".type", "must be IVA, ISR or IEPS")
    elseif factor ~= "Exento" and type(t.rate) ~= "number" then
      c:add(tp .. ".rate", "must be a number (0.16 for IVA 16%)")
    else
      local ok, why = sat.tasa_allows(impuesto, factor, t.rate, withholding)
      if not ok then c:add(tp .. ".rate", why)
      else
        specs[#specs + 1] = { type = impuesto, factor = factor, rate = t.rate, withholding = withholding }
        if t.inclusive == true then inclusive[#inclusive + 1] = specs[#specs] end
      end
    end
  end
  if not qty or not price_cents or #c.problems > 0 then return nil end
  local price = decimal.from_units(price_cents, 2)
  if #inclusive > 0 then
    -- the price includes these taxes: back to the pre-tax unit price
    price = tax.unit_price_from_gross(price, inclusive, 6)
  end
  local discount = c:amount(item, "discount", path .. ".discount")
  local line = tax.line{ quantity = qty, unit_price = price, taxes = specs, decimals = 2,
    discount = discount and decimal.from_units(discount, 2) }
  if line.descuento > line.importe then
    c:add(path .. ".discount", "must not exceed quantity × unit_price")
    return nil
  end
  return line
end

-- Document totals from the computed lines, grouped and rounded as a
-- CFDI's (gigstack.tax.document).
local function totals(payment, lines, currency)
  local doc = tax.document{ lines = lines, currency = currency }
  local places = sat.decimals(currency)
  local function raw(d) return json.raw((d or decimal.zero):format(places)) end
  payment.subtotal = raw(doc.subtotal)
  payment.taxes = raw(doc.total_traslados)
  payment.withholding_taxes = raw(doc.total_retenidos)
  payment.total = raw(doc.total)
end

-- Newer-generation client: {id} | {search{on_key,on_value,auto_create}, ...fields}
local function resolve_client(ctx, c, body)
  local spec = c:object(body, "client", "client", true)
  if not spec then return nil end
  if check.present(spec.id) then
    if type(spec.id) ~= "string" then c:add("client.id", "must be a string"); return nil end
    local obj = ctx.store:get(ctx.team, "clients", spec.id)
    if not obj then wire.fail(404, "resource_not_found", "client " .. spec.id .. " not found") end
    return obj
  end
  local search = c:object(spec, "search", "client.search")
  if not search then
    c:add("client", "client.id or client.search is required")
    return nil
  end
  local key = c:one_of(search, "on_key", "client.search.on_key", { "tax_id", "email" })
  local value = c:string(search, "on_value", "client.search.on_value", true)
  if not key or not value then return nil end
  local found = clients.search(ctx, key, value)
  if found then return found end
  if search.auto_create ~= true then
    wire.fail(404, "resource_not_found",
      "no client with " .. key .. " " .. value .. " (set client.search.auto_create to create it)")
  end
  c:done()
  return clients.create(ctx, spec, "client.")
end

local AUTOMATIONS = { "none", "pue_invoice", "stamp_invoice" }
local LATER = { ppd_invoice_and_complement = true, receipt = true, payment = true }

local function register(ctx)
  local body = ctx:body()
  local st = ctx.store
  local key = body.idempotency_key
  if key ~= nil and (type(key) ~= "string" or key == "" or #key > 255) then
    wire.fail(400, "validation_failed", "idempotency_key: must be a string of 1 to 255 characters",
      { { field = "idempotency_key", message = "must be a string of 1 to 255 characters" } })
  end
  local replay = key and st:coll(ctx.team, "idempotency").items[key]
  if replay then
    return 200, wire.object(st:get(ctx.team, "payments", replay.payment_id),
      "Payment already registered (idempotent replay)")
  end
  local c = check.new()
  local automation = body.automation_type
  if type(automation) == "string" and LATER[automation] then
    wire.fail(422, "operation_not_allowed", "automation_type " .. automation
      .. " is not implemented by this emulator version")
  end
  automation = c:one_of(body, "automation_type", "automation_type", AUTOMATIONS, "none")
  if automation == "stamp_invoice" then automation = "pue_invoice" end
  local currency = c:one_of(body, "currency", "currency", check.CURRENCIES, "MXN")
  local form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS)
  if automation == "pue_invoice" and not form then
    c:add("payment_form", "is required for automation_type pue_invoice (SAT c_FormaPago, e.g. \"03\")")
  end
  if automation == "pue_invoice" and form == "99" then
    c:add("payment_form", "99 (por definir) is not allowed on a PUE invoice")
  end
  local items = c:array(body, "items", "items", true)
  local lines = {}
  local out_items = json.array()
  for i, item in ipairs(items or {}) do
    local path = "items[" .. i .. "]"
    if type(item) ~= "table" then
      c:add(path, "must be an object")
    else
      c:string(item, "description", path .. ".description", true)
      local price = c:amount(item, "unit_price", path .. ".unit_price", true)
      lines[#lines + 1] = line_amounts(c, item, path, price)
      local copy = {}
      for k, v in pairs(item) do copy[k] = v end
      copy.product_key = copy.product_key or "01010101"
      copy.unit_key = copy.unit_key or "E48"
      if price then copy.unit_price = money.json(price) end
      out_items[#out_items + 1] = copy
    end
  end
  -- every shape problem is reported before any lookup can 404
  if #c.problems > 0 then c:done() end
  local client = resolve_client(ctx, c, body)
  if automation == "pue_invoice" and client and not client.tax_id then
    c:add("client.tax_id", "the client needs an RFC to be invoiced")
  end
  c:done()
  local now = st:now()
  local payment = {
    id = st:id("payment"), object = "payment", status = "succeeded", livemode = false,
    client = client, items = out_items, currency = currency,
    exchange_rate = body.exchange_rate or 1, payment_form = form,
    automation_type = automation, idempotency_key = key, metadata = body.metadata or {},
    total_refunded = json.raw("0.00"), refunds = json.array(), created_at = now,
    succeeded_at = now, payment_processor = "manual", team = ctx.team,
  }
  payment.short_url = "https://pay.gigstack.io/p/" .. payment.id:sub(9, 16)
  totals(payment, lines, currency)
  st:insert(ctx.team, "payments", payment)
  if key then st:insert(ctx.team, "idempotency", { id = key, payment_id = payment.id }) end
  if automation == "pue_invoice" then
    local inv = invoices.issue(ctx, payment, "PUE")
    payment.invoice_id = inv.uuid
    payment.invoice = { uuid = inv.uuid, id = inv.id }
  end
  return 200, wire.object(payment, "Payment registered successfully")
end

-- Older generation: POST /v2/payments
local function create_legacy(ctx)
  local body = ctx:body()
  local st = ctx.store
  local c = check.new()
  local paid = body.paid == true
  local method = c:one_of(body, "paymentMethod", "paymentMethod", check.PAYMENT_FORMS)
  if paid and not method then c:add("paymentMethod", "is required when paid is true") end
  if body.automateIncomeInvoiceAndComplement == true and (paid or body.paymentMethod ~= nil) then
    c:add("automateIncomeInvoiceAndComplement", "cannot be combined with paid or paymentMethod")
  end
  local currency = c:one_of(body, "currency", "currency", check.CURRENCIES, "MXN")
  local items = c:array(body, "items", "items", true)
  local amount = 0
  local out_items = json.array()
  for i, item in ipairs(items or {}) do
    local path = "items[" .. i .. "]"
    if type(item) ~= "table" then
      c:add(path, "must be an object")
    else
      local total = c:amount(item, "total", path .. ".total", true)
      if total then amount = amount + total end
      local copy = { discount = 0, currency = currency }
      for k, v in pairs(item) do copy[k] = v end
      copy.taxes = copy.taxes or json.array()
      out_items[#out_items + 1] = copy
    end
  end
  local client
  if check.present(body.clientId) then
    client = st:get(ctx.team, "clients", tostring(body.clientId))
    if not client then
      wire.fail(404, "resource_not_found", "client " .. tostring(body.clientId) .. " not found")
    end
  elseif type(body.client) == "table" then
    local rfc = body.client.rfc or body.client.tax_id
    client = rfc and clients.search(ctx, "tax_id", rfc)
    if not client then c:done(); client = clients.create(ctx, body.client, "client.") end
  elseif check.present(body.email) then
    client = clients.search(ctx, "email", body.email)
    if not client then c:done(); client = clients.create(ctx, { email = body.email, name = body.email }) end
  else
    c:add("clientId", "clientId, client or email is required")
  end
  c:done()
  local internal_id = type(body.metadata) == "table" and body.metadata.internalId
  if internal_id then
    local seen = st:coll(ctx.team, "internal_ids").items[internal_id]
    if seen then
      wire.fail(409, "resource_conflict", "metadata.internalId " .. tostring(internal_id)
        .. " already used by payment " .. seen.payment_id .. " in this team")
    end
  end
  local now_ms = st:now() * 1000
  local id = st:id("payment", "")
  local status = paid and "succeeded" or "requires_payment_method"
  local payment = {
    id = id, fid = id, team = ctx.team, billingAccount = st.teams[ctx.team].billing_account,
    amount = amount, currency = currency, status = status, internalStatus = status,
    client = client, clientId = client.id, items = out_items, discount = 0,
    exchange = body.exchange or 1, payment_form = method, processor = "api",
    automations = json.array(), invoices = json.array(), metadata = body.metadata or {},
    from = body.from or "api", timestamp = now_ms, created = now_ms,
    succeededTimestamp = paid and now_ms or json.null, livemode = false,
    shortURL = "https://gigstack.xyz/" .. id, shortUrl = "https://gigstack.xyz/" .. id,
  }
  st:insert(ctx.team, "payments", payment)
  if internal_id then
    st:insert(ctx.team, "internal_ids", { id = internal_id, payment_id = id })
  end
  if body.automaticInvoice == true then
    payment.automations[1] = { action = "create", ref = "payments", type = "invoice", from = "payments" }
    if paid then
      -- older payments carry cents; the invoice wants major-unit totals
      local inv = invoices.issue(ctx, {
        id = id, client = client, items = out_items, currency = currency,
        exchange_rate = payment.exchange, payment_form = method,
        subtotal = money.json(amount), taxes = json.raw("0.00"),
        withholding_taxes = json.raw("0.00"), total = money.json(amount),
      }, "PUE")
      payment.invoices[1] = inv.uuid
    end
  end
  return 200, { data = payment, message = "Pago registrado correctamente", next = json.null }
end

function M.routes(route)
  route("POST", "^/payments/register$", register)
  route("POST", "^/payments$", create_legacy, { older = true })
  route("GET", "^/payments$", function(ctx)
    local status = ctx.query.status
    local client_id = ctx.query.client_id or ctx.query.clientId
    return 200, ctx:list("payments", function(p)
      return (not status or p.status == status)
        and (not client_id or (p.client and p.client.id == client_id))
    end)
  end)
  route("GET", "^/payments/([^/]+)$", function(ctx, id)
    local p = ctx.store:get(ctx.team, "payments", id)
    if not p then wire.fail(404, "resource_not_found", "payment " .. id .. " not found") end
    return 200, wire.object(p)
  end)
end

return M
