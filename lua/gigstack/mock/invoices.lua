--- Invoices: income (I), egress (E), payment complements (P, at
-- /invoices/payment), drafts, files the emulator serves itself (a CFDI
-- 4.0 XML with the invoice's figures and a one-page PDF), send, search,
-- cancellation (DELETE with {motive, replacement}) and CFDI errors.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local amounts = require "gigstack.mock.amounts"
local cfdi = require "gigstack.mock.cfdi"
local money = require "gigstack.fiscal.money"
local json = require "gigstack.async.json"
local sat = require "gigstack.fiscal.sat"

local M = {}

local function cents(v)
  if type(v) == "table" and v.text then v = v.text end
  return money.cents(v) or 0
end

local function next_folio(ctx, series)
  return ctx.store:next_folio(ctx.team, series)
end

local function new_invoice(ctx, fields)
  local st = ctx.store
  local uuid = st:uuid()
  local inv = { id = uuid, uuid = uuid, object = "invoice", status = "valid", livemode = false,
    created_at = st:now(), team = ctx.team, payment_complements = 0 }
  for k, v in pairs(fields) do inv[k] = v end
  inv.series = inv.series or (inv.invoice_type == "P" and "P" or inv.invoice_type == "E" and "NC" or "GS")
  inv.folio_number = next_folio(ctx, inv.series)
  return inv
end

--- Issue an income invoice for a payment. method is "PUE" or "PPD".
function M.issue(ctx, payment, method)
  local inv = new_invoice(ctx, {
    invoice_type = "I", client = payment.client, items = payment.items,
    currency = payment.currency, exchange_rate = payment.exchange_rate,
    payment_method = method, payment_form = method == "PUE" and payment.payment_form or "99",
    use = payment.client.use or sat.default_uso(payment.client.tax_id, payment.client.tax_system),
    subtotal = payment.subtotal, taxes = payment.taxes,
    withholding_taxes = payment.withholding_taxes, total = payment.total,
    last_balance = method == "PPD" and payment.total or json.raw("0.00"),
    payment_id = payment.id,
    series = type(payment.invoice_config) == "table" and payment.invoice_config.serie or nil,
  })
  ctx.store:insert(ctx.team, "invoices", inv)
  ctx:event("invoice.created", inv)
  return inv
end

--- A payment complement (REP, type P) for `amount` cents against a PPD
-- invoice: parcialidad number, saldo anterior / pagado / insoluto.
function M.complement(ctx, inv, amount, form, payment_id)
  local before = cents(inv.last_balance)
  if inv.status ~= "valid" then
    wire.fail(409, "business_rule_violation", "invoice " .. inv.uuid .. " is " .. inv.status)
  end
  if inv.payment_method ~= "PPD" then
    wire.fail(409, "business_rule_violation", "invoice " .. inv.uuid .. " is PUE: it takes no payment complement")
  end
  if form == nil or form == "99" then
    wire.fail(409, "business_rule_violation", "a payment complement's FormaDePagoP is how the money arrived: "
      .. "not " .. tostring(form or "missing"))
  end
  if amount <= 0 or amount > before then
    wire.fail(409, "business_rule_violation", string.format("complement of %s exceeds the balance %s of %s",
      money.format(amount), money.format(before), inv.uuid))
  end
  inv.payment_complements = (inv.payment_complements or 0) + 1
  inv.last_balance = money.json(before - amount)
  local rep = new_invoice(ctx, {
    invoice_type = "P", client = inv.client, currency = "XXX", use = "CP01",
    subtotal = json.raw("0"), total = json.raw("0"), payment_id = payment_id,
    related_invoice = inv.uuid, invoice_id = inv.uuid,
    payment = { payment_form = form, amount = money.json(amount), currency = inv.currency,
      installment = inv.payment_complements, previous_balance = money.json(before),
      paid = money.json(amount), remaining_balance = money.json(before - amount) },
  })
  ctx.store:insert(ctx.team, "complements", rep)
  ctx:event("invoice.created", rep)
  return rep
end

local function find(ctx, uuid, coll)
  local st = ctx.store
  local inv
  if coll then inv = st:get(ctx.team, coll, uuid)
  else
    inv = st:get(ctx.team, "invoices", uuid) or st:get(ctx.team, "egress", uuid)
      or st:get(ctx.team, "complements", uuid)
  end
  if not inv then wire.fail(404, "resource_not_found", "invoice " .. uuid .. " not found") end
  return inv
end
M.find = find

-- Income or egress invoice from a request body.
local function from_body(ctx, body, kind)
  local c = check.new()
  local client
  local spec = c:object(body, "client", "client", true)
  if spec and check.present(spec.id) then
    client = ctx.store:get(ctx.team, "clients", tostring(spec.id))
    if not client then wire.fail(404, "resource_not_found", "client " .. tostring(spec.id) .. " not found") end
  elseif spec then
    c:add("client.id", "is required")
  end
  local currency = c:one_of(body, "currency", "currency", check.CURRENCIES, "MXN")
  local method = c:one_of(body, "payment_method", "payment_method", { "PUE", "PPD" }, "PUE")
  local form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS, method == "PPD" and "99" or nil)
  if not form then c:add("payment_form", "is required (SAT c_FormaPago)") end
  if method == "PPD" and form and form ~= "99" then c:add("payment_form", "must be 99 when payment_method is PPD") end
  if method == "PUE" and form == "99" then c:add("payment_form", "99 is not allowed when payment_method is PUE") end
  local use = body.use or (client and (client.use or sat.default_uso(client.tax_id, client.tax_system))) or "G03"
  if not sat.uso(use) then c:add("use", tostring(use) .. " is not a c_UsoCFDI code (CFDI 4.0)")
  elseif kind == "I" and client then
    local why = check.uso_problem(use, client.tax_id, client.tax_system)
    if why then c:add("use", why) end
  end
  if client and not client.tax_id then c:add("client.tax_id", "the client needs an RFC to be invoiced") end
  -- CFDI 4.0: RegimenFiscalReceptor and DomicilioFiscalReceptor are required
  if client and not client.tax_system then
    c:add("client.tax_system", "the client needs a régimen fiscal to be invoiced (CFDI 4.0)")
  end
  local nozip = check.receptor_zip_problem(client)
  if nozip then c:add("client.address.zip", nozip) end
  c:exchange_rate(body, "exchange_rate", currency)
  local items = c:array(body, "items", "items", true)
  if #c.problems > 0 then c:done() end
  local out, lines = amounts.items(ctx, c, items)
  local related = body.related_documents or body.related
  if kind == "E" then
    if type(related) ~= "table" or #related == 0 then
      c:add("related_documents", "an egress invoice relates to the invoices it reduces: [{uuid, relation}]")
    else
      for i, r in ipairs(related) do
        if type(r) ~= "table" or not ctx.store:get(ctx.team, "invoices", tostring(r.uuid)) then
          c:add("related_documents[" .. i .. "].uuid", "no income invoice " .. tostring(type(r) == "table" and r.uuid))
        end
      end
    end
  end
  c:done()
  local inv = { invoice_type = kind, client = client, items = out, currency = currency,
    exchange_rate = body.exchange_rate or 1, payment_method = kind == "E" and "PUE" or method,
    payment_form = form, use = kind == "E" and "G02" or use, series = body.series,
    metadata = body.metadata or {}, related_documents = related, emails = body.emails,
    global = type(body.global) == "table" and body.global or nil }
  amounts.totals(inv, lines, currency)
  inv.last_balance = method == "PPD" and kind == "I" and inv.total or json.raw("0.00")
  return inv
end

-- ===== the emulator's own files =====

local function num(v)
  if type(v) == "table" and v.text then return v.text end
  return money.format(cents(v))
end

--- The invoice's CFDI 4.0, sealed with the emulator's TEST certificates
-- (gigstack.mock.cfdi).
function M.xml(ctx, inv)
  return (cfdi.build(ctx, inv))
end

--- A minimal one-page PDF with the invoice's main figures.
function M.pdf(inv)
  local lines = { "CFDI " .. inv.invoice_type .. " " .. inv.uuid, "Serie " .. tostring(inv.series)
    .. " Folio " .. tostring(inv.folio_number), "Receptor " .. tostring(inv.client and inv.client.tax_id),
    "Total " .. num(inv.total) .. " " .. tostring(inv.currency), "Estado " .. inv.status }
  local text = {}
  for i, l in ipairs(lines) do
    text[i] = string.format("BT /F1 12 Tf 72 %d Td (%s) Tj ET", 720 - 20 * i, l:gsub("[()\\]", "\\%0"))
  end
  local stream = table.concat(text, "\n")
  local objs = { "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    string.format("<< /Length %d >>\nstream\n%s\nendstream", #stream, stream),
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>" }
  local out, offsets = { "%PDF-1.4\n" }, {}
  local pos = #out[1]
  for i, o in ipairs(objs) do
    offsets[i] = pos
    local chunk = string.format("%d 0 obj\n%s\nendobj\n", i, o)
    out[#out + 1] = chunk
    pos = pos + #chunk
  end
  local xref = { string.format("xref\n0 %d\n0000000000 65535 f \n", #objs + 1) }
  for i = 1, #objs do xref[#xref + 1] = string.format("%010d 00000 n \n", offsets[i]) end
  out[#out + 1] = table.concat(xref)
  out[#out + 1] = string.format("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", #objs + 1, pos)
  return table.concat(out)
end

-- ===== routes =====

local function search_filter(q)
  q = (q or ""):lower()
  if q == "" then wire.fail(400, "missing_required_field", "q: is required") end
  return function(inv)
    local hay = table.concat({ inv.uuid, tostring(inv.series) .. "-" .. tostring(inv.folio_number),
      inv.client and (inv.client.legal_name or "") or "", inv.client and (inv.client.tax_id or "") or "" }, " ")
    return hay:lower():find(q, 1, true) ~= nil
  end
end

local function list_filter(ctx)
  local q = ctx.query
  return function(inv)
    return (not q.status or inv.status == q.status)
      and (not q.client_id or (inv.client and inv.client.id == q.client_id))
      and (not q.series or inv.series == q.series)
      and (not q.payment_method or inv.payment_method == q.payment_method)
      and (not q.invoice_id or inv.related_invoice == q.invoice_id)
  end
end

function M.routes(route)
  route("GET", "^/invoices/income$", function(ctx) return 200, ctx:list("invoices", list_filter(ctx)) end)
  route("POST", "^/invoices/income$", function(ctx)
    local body = ctx:body()
    local payment
    if body.payment_id ~= nil then   -- invoicing a payment: once
      payment = ctx.peers.payments.find(ctx, tostring(body.payment_id))
      if payment.invoice_id then
        wire.fail(409, "resource_already_exists", "payment " .. payment.id .. " is already invoiced by "
          .. payment.invoice_id)
      end
    end
    local inv = new_invoice(ctx, from_body(ctx, body, "I"))
    if payment then
      inv.payment_id = payment.id
      payment.invoice_id, payment.invoice = inv.uuid, { uuid = inv.uuid, id = inv.id }
      payment.invoices[#payment.invoices + 1] = inv.uuid
    end
    if body.draft == true then
      inv.status = "draft"
      ctx.store:insert(ctx.team, "drafts", inv)
      return 200, wire.object(inv, "Draft created")
    end
    ctx.store:insert(ctx.team, "invoices", inv)
    ctx:event("invoice.created", inv)
    return 200, wire.object(inv, "Invoice created successfully")
  end)
  route("GET", "^/invoices/income/([^/]+)$", function(ctx, uuid)
    return 200, wire.object(find(ctx, uuid, "invoices"))
  end)
  route("GET", "^/invoices/egress$", function(ctx) return 200, ctx:list("egress", list_filter(ctx)) end)
  route("POST", "^/invoices/egress$", function(ctx)
    local inv = new_invoice(ctx, from_body(ctx, ctx:body(), "E"))
    ctx.store:insert(ctx.team, "egress", inv)
    ctx:event("invoice.created", inv)
    return 200, wire.object(inv, "Egress invoice created successfully")
  end)
  route("GET", "^/invoices/egress/([^/]+)$", function(ctx, uuid) return 200, wire.object(find(ctx, uuid, "egress")) end)
  route("GET", "^/invoices/payment$", function(ctx) return 200, ctx:list("complements", list_filter(ctx)) end)
  route("POST", "^/invoices/payment$", function(ctx)
    local body = ctx:body()
    local c = check.new()
    local uuid = c:string(body, "invoice_id", "invoice_id", true)
    local amount = c:amount(body, "amount", "amount", true)
    local form = c:one_of(body, "payment_form", "payment_form", check.PAYMENT_FORMS)
    if not form then c:add("payment_form", "is required (how the money arrived)") end
    if form == "99" then c:add("payment_form", "99 (por definir) is not a way money arrived") end
    c:done()
    local key = body.idempotency_key
    local seen = key and ctx.store:coll(ctx.team, "complement_keys").items[key]
    if seen then
      return 200, wire.object(find(ctx, seen.uuid, "complements"), "Complement already issued (idempotent replay)")
    end
    local inv = find(ctx, uuid, "invoices")
    if inv.status ~= "valid" then
      wire.fail(409, "business_rule_violation", "invoice " .. uuid .. " is " .. inv.status)
    end
    local rep = M.complement(ctx, inv, amount, form, body.payment_id)
    if key then ctx.store:insert(ctx.team, "complement_keys", { id = key, uuid = rep.uuid }) end
    return 200, wire.object(rep, "Payment complement issued")
  end)
  route("GET", "^/invoices/payment/([^/]+)$", function(ctx, uuid)
    return 200, wire.object(find(ctx, uuid, "complements"))
  end)
  route("GET", "^/invoices/draft$", function(ctx) return 200, ctx:list("drafts") end)
  route("POST", "^/invoices/draft/([^/]+)/stamp$", function(ctx, uuid)
    local d = find(ctx, uuid, "drafts")
    ctx.store:remove(ctx.team, "drafts", uuid)
    d.status = "valid"
    d.created_at = ctx.store:now()
    ctx.store:insert(ctx.team, "invoices", d)
    ctx:event("invoice.created", d)
    return 200, wire.object(d, "Draft stamped")
  end)
  route("GET", "^/invoices/errors$", function(ctx) return 200, ctx:list("cfdi_errors") end)
  route("GET", "^/invoices/search$", function(ctx)
    return 200, ctx:list("invoices", search_filter(ctx.query.q))
  end)
  route("GET", "^/invoices/([^/]+)/files$", function(ctx, uuid)
    local inv = find(ctx, uuid)
    local base = ctx.base_url .. "/files/" .. ctx.team .. "/" .. inv.uuid
    return 200, wire.object({ pdf = base .. ".pdf", xml = base .. ".xml", uuid = inv.uuid })
  end)
  route("POST", "^/invoices/([^/]+)/send$", function(ctx, uuid)
    local inv = find(ctx, uuid)
    local body = ctx.req.body ~= "" and ctx:body() or {}
    local emails = body.emails
    if emails ~= nil and (type(emails) ~= "table" or #emails == 0) then
      wire.fail(400, "validation_failed", "emails: must be a non-empty array of addresses",
        { { field = "emails", message = "must be a non-empty array of addresses" } })
    end
    if not emails then   -- the client's email and the invoice's own recipients, once each
      emails = json.array()
      local seen = {}
      local from_invoice = type(inv.emails) == "table" and inv.emails or {}
      for _, e in ipairs{ inv.client and inv.client.email or false, table.unpack(from_invoice) } do
        if type(e) == "string" and not seen[e:lower()] then
          seen[e:lower()] = true
          emails[#emails + 1] = e
        end
      end
    end
    if #emails == 0 then wire.fail(422, "business_rule_violation", "the client has no email; pass emails") end
    ctx:event("invoice.sent", inv)
    return 200, wire.object({ recipients = emails, attachments = json.array{ inv.uuid .. ".pdf", inv.uuid .. ".xml" } },
      "Invoice sent")
  end)
  route("DELETE", "^/invoices/([^/]+)$", function(ctx, uuid)
    local inv = find(ctx, uuid)
    local body = ctx:body()
    local c = check.new()
    local motive = c:one_of(body, "motive", "motive", { "01", "02", "03", "04" })
    if not motive then c:add("motive", "is required (01, 02, 03 or 04)") end
    local replacement = body.replacement or body.substitution_uuid
    if motive == "01" then
      if not check.present(replacement) then
        c:add("replacement", "motive 01 requires the uuid of the invoice that replaces this one")
      elseif not ctx.store:get(ctx.team, "invoices", tostring(replacement)) then
        c:add("replacement", "no invoice " .. tostring(replacement) .. " to relate")
      end
    elseif check.present(replacement) then
      c:add("replacement", "only motive 01 takes a replacement")
    end
    c:done()
    if inv.status == "cancelled" then wire.fail(409, "resource_conflict",
      "invoice " .. uuid .. " is already cancelled") end
    if inv.invoice_type == "I" and (inv.payment_complements or 0) > 0 then
      wire.fail(409, "business_rule_violation", "cancel the payment complements of " .. uuid .. " first")
    end
    if inv.invoice_type == "P" then   -- the parent PPD invoice owes that amount again
      local parent = ctx.store:get(ctx.team, "invoices", tostring(inv.related_invoice))
      if parent then
        parent.payment_complements = math.max(0, (parent.payment_complements or 1) - 1)
        parent.last_balance = money.json(cents(parent.last_balance) + cents(inv.payment.paid))
      end
    end
    inv.status = "cancelled"
    inv.cancellation_status = "accepted"
    inv.cancellation_receipt = { motive = motive, replacement = replacement, date = ctx.store:now() }
    ctx:event("invoice.cancelled", inv)
    return 200, wire.object(inv, "Invoice cancelled")
  end)
  -- the old CLI path: gigstack answers 404
  route("GET", "^/invoices/complements$", function()
    wire.fail(404, "resource_not_found", "no endpoint GET /v2/invoices/complements (use /invoices/payment)")
  end)
end

return M
