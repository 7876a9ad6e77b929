--- Payments of both documentation generations:
--   older  POST /v2/payments            (clientId | client | email, item `total`
--          in units, response `amount` in cents, automation flags, `team`
--          in the body for master teams, split billing by metadata key)
--   newer  POST /v2/payments/register   (already collected) and
--          POST /v2/payments/request    (payment link): client.search +
--          auto_create, automation_type, idempotency_key replay
-- plus list, get, search, mark as paid, refund and cancel.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local amounts = require "gigstack.mock.amounts"
local money = require "gigstack.fiscal.money"
local json = require "gigstack.async.json"

local M = {}
local status_filter   -- defined with the statuses below

-- Exchange rates the emulator uses when a request gives none.
M.RATES = amounts.RATES

local function cents_of(v)
  if type(v) == "table" and v.text then v = v.text end
  return money.cents(v) or 0
end

-- Newer-generation client: {id} | {search{on_key,on_value,auto_create}, ...fields}.
-- An unknown id falls back to the search when one is given.
local function resolve_client(ctx, c, body)
  local spec = c:object(body, "client", "client", true)
  if not spec then return nil end
  if check.present(spec.id) then
    if type(spec.id) ~= "string" then c:add("client.id", "must be a string"); return nil end
    local obj = ctx.store:get(ctx.team, "clients", spec.id)
    if obj then return obj end
    if type(spec.search) ~= "table" then
      wire.fail(404, "resource_not_found", "client " .. spec.id .. " not found")
    end
  end
  local search = c:object(spec, "search", "client.search")
  if not search then
    c:add("client", "client.id or client.search is required")
    return nil
  end
  local key = c:one_of(search, "on_key", "client.search.on_key", { "tax_id", "email" })
  local value = c:string(search, "on_value", "client.search.on_value", true)
  if not key or not value then return nil end
  local found = ctx.peers.clients.search(ctx, key, value)
  if found then return found end
  if search.auto_create ~= true then
    wire.fail(404, "resource_not_found",
      "no client with " .. key .. " " .. value .. " (set client.search.auto_create to create it)")
  end
  c:done()
  if key == "email" then
    -- the live API creates the client from the email alone
    local fields = {}
    for k, v in pairs(spec) do fields[k] = v end
    fields.email = check.present(fields.email) and fields.email or value
    if not check.present(fields.name) and not check.present(fields.legal_name) then fields.name = fields.email end
    spec = fields
  end
  return ctx.peers.clients.create(ctx, spec, "client.")
end

local AUTOMATIONS = { "none", "pue_invoice", "ppd_invoice_and_complement", "receipt",
  "stamp_invoice", "payment" }

--- Run the payment's automation once it is paid (or at creation for PPD).
local function automate(ctx, payment, stage)
  local kind = payment.automation_type
  if kind == "pue_invoice" and stage == "paid" and not payment.invoice_id
    and not ctx.peers.clients.invoiceable(payment.client) then
    -- no RFC, régimen or código postal: the payment stands and the
    -- customer invoices it from the self-invoice portal
    payment.invoice_pending = "the client has no complete fiscal data; invoicing is left to the self-invoice portal"
  elseif kind == "pue_invoice" and stage == "paid" and not payment.invoice_id then
    local inv = ctx.peers.invoices.issue(ctx, payment, "PUE")
    payment.invoice_id = inv.uuid
    payment.invoice = { uuid = inv.uuid, id = inv.id }
    payment.invoices[#payment.invoices + 1] = inv.uuid
  elseif kind == "ppd_invoice_and_complement" then
    if not payment.invoice_id then
      local inv = ctx.peers.invoices.issue(ctx, payment, "PPD")
      payment.invoice_id = inv.uuid
      payment.invoice = { uuid = inv.uuid, id = inv.id }
      payment.invoices[#payment.invoices + 1] = inv.uuid
    end
    if stage == "paid" then
      local inv = ctx.store:get(ctx.team, "invoices", payment.invoice_id)
      local rep = ctx.peers.invoices.complement(ctx, inv, cents_of(payment.total), payment.payment_form, payment.id)
      payment.complements = payment.complements or json.array()
      payment.complements[#payment.complements + 1] = rep.uuid
    end
  elseif kind == "receipt" and stage == "paid" and not payment.receipt_id then
    local r = ctx.peers.receipts.create(ctx, { client = payment.client, items = payment.items,
      currency = payment.currency, payment_id = payment.id, payment_form = payment.payment_form })
    payment.receipt_id = r.id
    payment.receipts[#payment.receipts + 1] = r.id
  end
end

-- Register (already collected) and request (a payment link) share this.
local function newer(ctx, paid)
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
  local automation = c:one_of(body, "automation_type", "automation_type", AUTOMATIONS, "none")
  if automation == "stamp_invoice" then automation = "pue_invoice" end
  if automation == "payment" then automation = "none" end
  local currency = c:one_of(body, "currency", "currency", check.CURRENCIES, "MXN")
  c:exchange_rate(body, "exchange_rate", currency)
  local form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS)
  if paid and automation == "pue_invoice" and not form then
    c:add("payment_form", "is required for automation_type pue_invoice (SAT c_FormaPago, e.g. \"03\")")
  end
  if automation == "pue_invoice" and form == "99" then
    c:add("payment_form", "99 (por definir) is not allowed on a PUE invoice")
  end
  -- registered as paid, a PPD payment gets its complement now, whose
  -- FormaDePagoP is how the money arrived: never 99 (the invoice keeps 99)
  if paid and automation == "ppd_invoice_and_complement" and (not form or form == "99") then
    c:add("payment_form", "a paid ppd_invoice_and_complement payment issues its payment complement now: "
      .. "give how the money arrived (c_FormaPago, not 99; the PPD invoice itself carries 99)")
  end
  local items = c:array(body, "items", "items", true)
  local out_items, lines = amounts.items(ctx, c, items)
  -- every shape problem is reported before any lookup can 404
  if #c.problems > 0 then c:done() end
  local client = resolve_client(ctx, c, body)
  -- a PPD invoice is issued at once and needs the receptor's RFC and zip;
  -- a PUE one without them waits for the customer's self-invoice portal
  if automation == "ppd_invoice_and_complement" and client then
    if not client.tax_id then c:add("client.tax_id", "the client needs an RFC for a PPD invoice") end
    local nozip = check.receptor_zip_problem(client)
    if nozip then c:add("client.address.zip", nozip) end
  end
  c:done()
  local now = st:now()
  local payment = {
    id = st:id("payment"), object = "payment", livemode = false,
    status = paid and "succeeded" or "requires_payment_method",
    client = client, items = out_items, currency = currency,
    exchange_rate = body.exchange_rate or tonumber(M.RATES[currency]), payment_form = form,
    automation_type = automation, idempotency_key = key, metadata = body.metadata or {},
    invoice_config = body.invoice_config, emails = body.emails,
    allowed_payment_methods = json.array(),
    total_refunded = json.raw("0.00"), refunds = json.array(), invoices = json.array(),
    receipts = json.array(), payments = json.array(), discount = 0, created_at = now,
    succeeded_at = paid and now or json.null, payment_processor = paid and "manual" or "api",
    from = "api", team = ctx.team,
  }
  for _, m in ipairs(type(body.allowed_payment_methods) == "table" and body.allowed_payment_methods or {}) do
    payment.allowed_payment_methods[#payment.allowed_payment_methods + 1] = { id = tostring(m.id or m) }
  end
  payment.short_url = "https://pay.gigstack.io/p/" .. payment.id:sub(9, 16)
  amounts.totals(payment, lines, currency)
  if automation == "ppd_invoice_and_complement" and cents_of(payment.total) <= 0 then
    wire.fail(400, "validation_failed", "items: a PPD invoice needs a total above 0",
      { { field = "items", message = "a PPD invoice needs a total above 0" } })
  end
  st:insert(ctx.team, "payments", payment)
  if key then st:insert(ctx.team, "idempotency", { id = key, payment_id = payment.id }) end
  ctx:event("payment.created", payment)
  if paid then
    automate(ctx, payment, "paid")
    -- the answer is the payment as this last event froze it
    return 200, ctx:answer(payment, ctx:event("payment.succeeded", payment), "Payment registered successfully")
  elseif automation == "ppd_invoice_and_complement" then
    automate(ctx, payment, "created")
  end
  return 200, wire.object(payment, "Payment request created successfully")
end

-- ===== older generation: POST /v2/payments =====

--- The team to split with, from metadata: direct team id, or a team whose
-- own metadata carries the same key and value (same billing account only).
local function split_target(ctx, master, metadata)
  if not master.split_billing or type(metadata) ~= "table" then return nil end
  for _, k in ipairs(master.metadata_split_keys or {}) do
    local v = metadata[k]
    if v ~= nil then
      local team = ctx.store.teams[tostring(v)]
      if not team then
        for _, t in pairs(ctx.store.teams) do
          if type(t.metadata) == "table" and t.metadata[k] ~= nil and tostring(t.metadata[k]) == tostring(v) then
            team = t
            break
          end
        end
      end
      if not team then wire.fail(404, "resource_not_found",
        "no connected team for metadata." .. k .. " " .. tostring(v)) end
      if team.billing_account ~= master.billing_account then
        wire.fail(403, "forbidden", "team " .. team.id .. " belongs to another billing account")
      end
      return team
    end
  end
end

local function create_legacy(ctx)
  local body = ctx:body()
  local st = ctx.store
  local c = check.new()
  -- older generation: `team` in the body, master teams of the same account only
  if check.present(body.team) then ctx:switch_team(tostring(body.team)) end
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
      local copy = { discount = 0, currency = currency, paymentType = { label = "Tarifa fija", value = "fixed" } }
      for k, v in pairs(item) do copy[k] = v end
      copy.id = copy.id or st:id("service", "")
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
    client = rfc and ctx.peers.clients.search(ctx, "tax_id", rfc)
    if not client then c:done(); client = ctx.peers.clients.create(ctx, body.client, "client.") end
  elseif check.present(body.email) then
    client = ctx.peers.clients.search(ctx, "email", body.email)
    if not client then c:done(); client = ctx.peers.clients.create(ctx, { email = body.email, name = body.email }) end
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
  local master = st.teams[ctx.team]
  local vendor = split_target(ctx, master, body.metadata)
  local now_ms = st:now() * 1000
  local id = st:id("payment", "")
  local status = paid and "succeeded" or "requires_payment_method"
  local exchange = body.exchange or tonumber(M.RATES[currency])
  local automations = json.array()
  if body.automaticInvoice == true or body.automateInvoiceOnComplete == true then
    automations[1] = { action = "create", ref = "payments", type = "invoice", from = "payments" }
  elseif body.automateIncomeInvoiceAndComplement == true then
    automations[1] = { action = "create", ref = "payments", type = "ppd_invoice_and_complement", from = "payments" }
  elseif body.forceReceipt == true then
    automations[1] = { action = "create", ref = "payments", type = "receipt", from = "payments" }
  end
  local payment = {
    id = id, fid = id, team = ctx.team, owner = "user_mock", billingAccount = master.billing_account,
    amount = amount, currency = currency, status = status, internalStatus = status,
    client = client, clientId = client.id, items = out_items, internalItems = out_items, discount = 0,
    exchange = exchange, exchangeRate = exchange, exchange_rate = exchange, payment_form = method,
    processor = "api", custom_method_types = json.array{
      { name = "Transferencia bancaria", id = "bank", manualConfirmation = true },
      { name = "Tarjeta de crédito o débito", id = "card", manualConfirmation = false,
        requiredKey = "paymentIntent" } },
    automations = automations, invoices = json.array(), payments = json.array(),
    metadata = body.metadata or {}, from = body.from or "api", avoidEmail = body.avoidEmail == true,
    forceReceipt = body.forceReceipt == true, invoiceConfig = body.invoiceConfig or {},
    date = body.date, timestamp = now_ms, created = now_ms,
    succeededTimestamp = paid and now_ms or json.null, livemode = body.livemode == true,
    shortURL = "https://gigstack.xyz/" .. id, shortUrl = "https://gigstack.xyz/" .. id,
    automation_type = body.automaticInvoice == true and "pue_invoice"
      or body.automateIncomeInvoiceAndComplement == true and "ppd_invoice_and_complement"
      or body.forceReceipt == true and "receipt" or "none",
    receipts = json.array(),
    -- major-unit figures for invoices issued from it (older payments carry cents)
    subtotal = money.json(amount), taxes = json.raw("0.00"), withholding_taxes = json.raw("0.00"),
    total = money.json(amount), total_refunded = json.raw("0.00"), refunds = json.array(),
  }
  if vendor then
    local split = 100 - (master.split_amount or 0)
    payment.transfer_data = { destination = vendor.id, split = split,
      splitType = { master = master.split_billing_type or "client",
        connect = master.split_billing_type_connect or "client" } }
    st:insert(ctx.team, "connect_payments", payment)   -- the connectPaymentsHub, apart
  else
    st:insert(ctx.team, "payments", payment)
  end
  if internal_id then
    st:insert(ctx.team, "internal_ids", { id = internal_id, payment_id = id })
  end
  ctx:event("payment.created", payment)
  if paid then
    automate(ctx, payment, "paid")
    ctx:event("payment.succeeded", payment)
  elseif payment.automation_type == "ppd_invoice_and_complement" then
    automate(ctx, payment, "created")
  end
  return 200, { data = payment, message = "Pago registrado correctamente", next = json.null }
end

-- Payment statuses in use (reference §2.11, §3.7); `pending` asks for
-- the open ones: a payment link not paid yet is pending or, in the
-- newer schema's words, requires_payment_method.
M.STATUSES = { "pending", "requires_payment_method", "processing", "succeeded", "failed", "cancelled",
  "refunded" }
local OPEN = { pending = true, requires_payment_method = true }

function status_filter(status)
  if status == "pending" then return OPEN end
  for _, s in ipairs(M.STATUSES) do
    if s == status then return { [s] = true } end
  end
  wire.fail(400, "invalid_field_value", "status: must be one of " .. table.concat(M.STATUSES, ", "),
    { { field = "status", message = "must be one of " .. table.concat(M.STATUSES, ", ") } })
end

-- ===== actions on one payment =====

local function find(ctx, id)
  local p = ctx.store:get(ctx.team, "payments", id) or ctx.store:get(ctx.team, "connect_payments", id)
  if not p then wire.fail(404, "resource_not_found", "payment " .. id .. " not found") end
  return p
end
M.find = find

local function mark_paid(ctx, id)
  local p = find(ctx, id)
  local body = ctx.req.body ~= "" and ctx:body() or {}
  if p.status == "succeeded" then wire.fail(409, "resource_conflict", "payment " .. id .. " is already paid") end
  if p.status ~= "requires_payment_method" and p.status ~= "pending" then
    wire.fail(409, "business_rule_violation", "payment " .. id .. " is " .. p.status .. " and cannot be paid")
  end
  local c = check.new()
  local form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS, p.payment_form)
  if not form then c:add("payment_form", "is required to mark a payment as paid") end
  if form == "99" then c:add("payment_form", "99 (por definir) is not a way money was paid") end
  c:done()
  p.payment_form = form
  automate(ctx, p, "paid")         -- may fail: the payment changes only after it worked
  p.status = "succeeded"
  p.internalStatus = p.amount and "succeeded" or nil
  local now = ctx.store:now()
  if type(body.date) == "number" then now = body.date > 1e11 and body.date // 1000 or body.date end
  p.succeeded_at = now
  if p.amount then p.succeededTimestamp = now * 1000 end
  ctx:event("payment.succeeded", p)
  return 200, wire.object(p, "Payment marked as paid")
end

local function refund(ctx, id)
  local p = find(ctx, id)
  local body = ctx.req.body ~= "" and ctx:body() or {}
  if p.status ~= "succeeded" and p.status ~= "partially_refunded" then
    wire.fail(409, "business_rule_violation", "only a succeeded payment can be refunded; " .. id .. " is " .. p.status)
  end
  local total, refunded = cents_of(p.total), cents_of(p.total_refunded)
  local c = check.new()
  local amount = c:amount(body, "amount", "amount") or (total - refunded)
  if amount <= 0 then c:add("amount", "must be greater than 0") end
  if refunded + amount > total then
    c:add("amount", "exceeds what is left to refund (" .. money.format(total - refunded) .. ")")
  end
  c:done()
  local r = { id = ctx.store:id("refund"), reason = body.reason, created_at = ctx.store:now(),
    total = money.json(amount), items = p.items,
    external_processor_refund = body.external_processor_refund == true }
  p.refunds[#p.refunds + 1] = r
  p.total_refunded = money.json(refunded + amount)
  p.status = refunded + amount == total and "refunded" or "succeeded"
  ctx:event("payment.refunded", p)
  return 200, wire.object(p, "Payment refunded")
end

local function cancel(ctx, id)
  local p = find(ctx, id)
  if p.status == "succeeded" or p.status == "refunded" then
    wire.fail(409, "business_rule_violation", "payment " .. id .. " is " .. p.status
      .. "; refund it instead of cancelling")
  end
  if p.status == "cancelled" then wire.fail(409, "resource_conflict", "payment " .. id .. " is already cancelled") end
  p.status = "cancelled"
  p.cancelled_at = ctx.store:now()
  ctx:event("payment.cancelled", p)
  return 200, wire.object(p, "Payment cancelled")
end

function M.routes(route)
  route("POST", "^/payments/register$", function(ctx) return newer(ctx, true) end)
  route("POST", "^/payments/request$", function(ctx) return newer(ctx, false) end)
  route("POST", "^/payments$", create_legacy, { older = true })
  route("GET", "^/payments$", function(ctx)
    local q = ctx.query
    local client_id = q.client_id or q.clientId
    local statuses = q.status and status_filter(q.status)
    return 200, ctx:list("payments", function(p)
      return (not statuses or statuses[p.status])
        and (not client_id or (p.client and p.client.id == client_id))
        and (not q.currency or p.currency == q.currency)
        and (not (q.tax_id or q.rfc) or (p.client and p.client.tax_id == (q.tax_id or q.rfc)))
        and (not q.email or (p.client and p.client.email == q.email))
    end)
  end)
  route("GET", "^/payments/search$", function(ctx)
    local q = (ctx.query.q or ""):lower()
    if q == "" then wire.fail(400, "missing_required_field", "q: is required") end
    return 200, ctx:list("payments", function(p)
      local hay = table.concat({ p.id, p.client and (p.client.name or "") or "",
        p.client and (p.client.tax_id or "") or "", p.client and (p.client.email or "") or "",
        type(p.metadata) == "table" and json.encode(p.metadata) or "" }, " "):lower()
      return hay:find(q, 1, true) ~= nil
    end)
  end)
  route("GET", "^/payments/([^/]+)$", function(ctx, id) return 200, wire.object(find(ctx, id)) end)
  route("POST", "^/payments/([^/]+)/paid$", mark_paid)
  route("POST", "^/payments/([^/]+)/refund$", refund)
  route("DELETE", "^/payments/([^/]+)$", cancel)
end

return M
