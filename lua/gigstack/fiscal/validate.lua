--- Validation before sending: client, payment and invoice payloads are
-- checked against the RFC rules, the SAT catalogs and the CFDI rules a
-- PAC would reject. Every problem is collected with its field path and
-- rule; one error value lists them all and no request is made.
local rfc = require "gigstack.fiscal.rfc"
local sat = require "gigstack.fiscal.sat"
local decimal = require "gigstack.fiscal.decimal"
local tax = require "gigstack.fiscal.tax"
local errors = require "gigstack.async.errors"
local json = require "gigstack.async.json"

local M = {}

local Report = {}
Report.__index = Report

local function report()
  return setmetatable({ problems = {}, warnings = {} }, Report)
end

-- `code`: the SAT rule broken (Anexo 20 matriz de errores CFDI40xxx, as
-- PACs report it), kept in `sat` and named in the text.
function Report:add(field, rule, code)
  if code then rule = rule .. " (" .. code .. ")" end
  self.problems[#self.problems + 1] = { field = field, rule = rule, message = rule, sat = code }
end

function Report:warn(field, text, code)
  if code then text = text .. " (" .. code .. ")" end
  self.warnings[#self.warnings + 1] = { field = field, message = text, sat = code }
end

local function given(v)
  return v ~= nil and v ~= json.null and v ~= ""
end

local function number_rule(r, v, path, rule)
  if not given(v) then return nil end
  local d = decimal.parse(v)
  if not d then r:add(path, "must be a number"); return nil end
  if rule == "positive" and d:sign() <= 0 then r:add(path, "must be greater than 0") end
  if rule == "non_negative" and d:sign() < 0 then r:add(path, "must not be negative") end
  return d
end

--- A receptor's uso (c_UsoCFDI) for an income or egress CFDI: in the
-- catalog, not CP01 (payment CFDIs only), S01 for the generic RFC, and
-- allowed for the persona and régimen when they are known (CFDI40161).
function M.uso_into(r, field, uso, persona, regimen, tax_id)
  if uso == "CP01" then
    r:add(field, "CP01 (Pagos) is only for payment CFDIs (tipo P); gigstack sets it on complements itself",
      "CFDI40161")
  elseif persona == "generic" and uso ~= "S01" then
    r:add(field, "must be S01 (sin efectos fiscales) for the generic RFC " .. tostring(tax_id), "CFDI40161")
  elseif not sat.uso(uso) then
    r:add(field, uso .. " is not a c_UsoCFDI code (CFDI 4.0)", "CFDI40160")
  elseif persona ~= "generic" and (persona or regimen) then
    local ok, why = sat.uso_allows(uso, regimen, persona)
    if not ok then r:add(field, "uso " .. uso .. " " .. why, "CFDI40161") end
  end
end

--- Client fields (prefix: "" or "client."). Returns the persona type
-- and the régimen when it is a valid one.
function M.client_into(r, c, prefix, opts)
  opts = opts or {}
  if type(c) ~= "table" then r:add(prefix:sub(1, -2), "must be an object"); return end
  local tax_id = c.tax_id or c.rfc
  local persona
  if given(tax_id) then
    local info, err = rfc.parse(tax_id)
    if not info then
      r:add(prefix .. (c.tax_id and "tax_id" or "rfc"), "RFC " .. err)
    else
      persona = info.type
      for _, w in ipairs(info.warnings) do r:warn(prefix .. "tax_id", w) end
    end
  elseif opts.require_tax_id then
    r:add(prefix .. "tax_id", "is required to invoice the client")
  end
  if opts.creating and not given(c.name) and not given(c.legal_name) then
    r:add(prefix .. "legal_name", "name or legal_name is required")
  end
  local regimen = c.tax_system
  local known_regimen
  if given(regimen) then
    regimen = tostring(regimen)
    if not sat.regimen(regimen) then
      r:add(prefix .. "tax_system", regimen .. " is not a c_RegimenFiscal code", "CFDI40157")
    elseif persona == "generic" and regimen ~= "616" then
      r:add(prefix .. "tax_system", "must be 616 (sin obligaciones fiscales) for the generic RFC " .. tax_id,
        "CFDI40158")
    elseif persona ~= "generic" and persona and not sat.regimen_allows(regimen, persona) then
      r:add(prefix .. "tax_system", "régimen " .. regimen .. " is not for personas "
        .. (persona == "fisica" and "físicas" or "morales"), "CFDI40158")
    else
      known_regimen = regimen
    end
  end
  local sin_obligaciones = persona == "generic" or known_regimen == "616"
  if given(c.use) then
    M.uso_into(r, prefix .. "use", tostring(c.use), persona, known_regimen, tax_id)
  elseif sin_obligaciones and not opts.use_given and (opts.require_tax_id or prefix == "") then
    -- the API's default uso is G03, which c_UsoCFDI does not allow for régimen 616
    r:add(prefix .. "use", "is required for " .. (persona == "generic" and "the generic RFC " .. tax_id
      or "régimen 616") .. ": must be S01 (sin efectos fiscales); the API's default G03 does not allow régimen 616",
      "CFDI40161")
  end
  local address = c.address
  local zip
  if given(address) then
    if type(address) ~= "table" then r:add(prefix .. "address", "must be an object")
    elseif given(address.zip) then
      zip = tostring(address.zip)
      if not zip:match("^%d%d%d%d%d$") then r:add(prefix .. "address.zip", "must be a 5-digit código postal") end
    end
  end
  local invoiced = opts.require_tax_id or (opts.invoiced_with_rfc and given(tax_id))
  if invoiced and not zip and (type(address) == "table" or not given(address))
      and persona ~= "generic" then
    r:add(prefix .. "address.zip", "is required to invoice the client: it is the CFDI's "
      .. "DomicilioFiscalReceptor (required by cfdv40.xsd)")
  end
  if given(c.email) and not tostring(c.email):match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    r:add(prefix .. "email", "must be an email address")
  end
  return persona, known_regimen
end

local function taxes_into(r, taxes, path)
  if not given(taxes) then return end
  if type(taxes) ~= "table" then r:add(path, "must be an array"); return end
  local iva_traslado
  for j, t in ipairs(taxes) do
    local tp = path .. "[" .. j .. "]"
    if type(t) ~= "table" then
      r:add(tp, "must be an object")
    else
      local impuesto = sat.impuesto(t.type)
      local factor = t.factor or "Tasa"
      local withholding = t.withholding == true
      if not impuesto then r:add(tp .. ".type", "must be IVA, ISR or IEPS")
      elseif factor ~= "Tasa" and factor ~= "Cuota" and factor ~= "Exento" then
        r:add(tp .. ".factor", "must be Tasa, Cuota or Exento (c_TipoFactor)")
      elseif factor == "Exento" then
        if given(t.rate) and decimal.parse(t.rate) and not decimal.parse(t.rate):is_zero() then
          r:add(tp .. ".rate", "must be empty for an Exento tax")
        end
        if withholding then r:add(tp .. ".factor", "Exento applies only to transferred taxes") end
      elseif not given(t.rate) then
        r:add(tp .. ".rate", "is required for factor " .. factor)
      else
        local ok, why = sat.tasa_allows(impuesto, factor, t.rate, withholding)
        if not ok then r:add(tp .. ".rate", why, withholding and "CFDI40185" or "CFDI40179") end
      end
      if impuesto == "IVA" and not withholding then
        if iva_traslado then
          r:add(tp, "a second transferred IVA on one line (taxes[" .. iva_traslado
            .. "] transfers IVA already): a concept is taxed at one IVA rate or exempt")
        else
          iva_traslado = j
        end
      end
    end
  end
end

-- A concept's Descuento must not exceed its Importe (Cantidad ×
-- ValorUnitario, net of the taxes a price includes).
local function discount_into(r, it, p, price_field)
  if not given(it.discount) then return end
  local d = number_rule(r, it.discount, p .. ".discount", "non_negative")
  local price = given(it[price_field]) and decimal.parse(it[price_field])
  local qty = it.quantity == nil and decimal.new(1) or decimal.parse(it.quantity)
  if not d or not price or not qty or qty:sign() <= 0 or price:sign() <= 0 then return end
  if price_field == "unit_price" then
    local inclusive = {}
    for _, t in ipairs(type(it.taxes) == "table" and it.taxes or {}) do
      if type(t) == "table" and t.inclusive == true then inclusive[#inclusive + 1] = t end
    end
    if #inclusive > 0 then
      local ok, net = pcall(tax.unit_price_from_gross, price, inclusive, 6)
      if not ok then return end   -- the taxes themselves are reported by taxes_into
      price = net
    end
    local ok, importe = pcall(qty.mul, qty, price)
    if not ok then return end   -- beyond 18 digits: the API answers for the range
    price = importe
  end
  if d > price then
    r:add(p .. ".discount", "must not exceed the line's importe " .. price:round(6):format(), "CFDI40169")
  end
end

local function items_into(r, items, price_field)
  if not given(items) or type(items) ~= "table" or #items == 0 then
    r:add("items", "must be a non-empty array")
    return
  end
  for i, it in ipairs(items) do
    local p = "items[" .. i .. "]"
    if type(it) ~= "table" then
      r:add(p, "must be an object")
    else
      if not given(it.description) and not given(it.name) and not given(it.id) then
        r:add(p .. ".description", "is required")
      end
      if it.quantity ~= nil then number_rule(r, it.quantity, p .. ".quantity", "positive") end
      if given(it[price_field]) then
        number_rule(r, it[price_field], p .. "." .. price_field, "positive")
      elseif not given(it.id) and type(it.search) ~= "table" then
        r:add(p .. "." .. price_field, "is required")
      end
      if given(it.product_key) and not tostring(it.product_key):match("^%d%d%d%d%d%d%d%d$") then
        r:add(p .. ".product_key", "must be an 8-digit c_ClaveProdServ code", "CFDI40162")
      end
      if given(it.unit_key) then
        local key = tostring(it.unit_key)
        local known = sat.clave_unidad(key)
        if not known then
          r:add(p .. ".unit_key", key .. " is not a c_ClaveUnidad code (1 to 3 capital letters or digits)",
            "CFDI40165")
        elseif known == "pattern" then
          r:warn(p .. ".unit_key", key .. " is not in the c_ClaveUnidad subset the SDK ships; "
            .. "check it against the SAT's catalog", "CFDI40165")
        end
      end
      taxes_into(r, it.taxes, p .. ".taxes")
      discount_into(r, it, p, price_field)
    end
  end
end

-- Moneda and TipoCambio of an income or egress CFDI. `field` is the name
-- the body uses for the exchange rate.
local function currency_into(r, body)
  local field = body.exchange_rate == nil and body.exchange ~= nil and "exchange" or "exchange_rate"
  local rate = body[field]
  local cur = given(body.currency) and tostring(body.currency) or "MXN"
  if given(body.currency) and not sat.moneda(cur) then
    r:add("currency", cur .. " is not a c_Moneda code", "CFDI40113")
    return
  end
  if cur == "XXX" then
    r:add("currency", "XXX (no currency) is only for traslado (T) and pago (P) CFDIs; "
      .. "an income or egress invoice is in a real currency")
    return
  end
  if not given(rate) then
    if cur ~= "MXN" then r:add("exchange_rate", "is required when currency is " .. cur, "CFDI40115") end
    return
  end
  local d = decimal.parse(rate)
  if not d then r:add(field, "must be a number", "CFDI40117")
  elseif d:sign() <= 0 then
    r:add(field, "must be greater than 0 (TipoCambio is at least 0.000001)", "CFDI40117")
  elseif d.scale > 6 and d ~= d:round(6) then
    r:add(field, "has more than 6 decimals (TipoCambio)", "CFDI40117")
  elseif cur == "MXN" and d ~= decimal.new(1) then
    r:add(field, "must be 1 (or absent) when currency is MXN", "CFDI40114")
  end
end

local function forma_into(r, field, v)
  if given(v) and not sat.forma_pago(tostring(v)) then
    r:add(field, tostring(v) .. " is not a c_FormaPago code", "CFDI40104")
    return nil
  end
  return given(v) and tostring(v) or nil
end

local function finish(r, what)
  if #r.problems == 0 then return true, r.warnings end
  local parts = {}
  for i, p in ipairs(r.problems) do parts[i] = p.field .. ": " .. p.rule end
  return nil, errors.new{
    kind = "validation", status = 0, code = "invalid_" .. what,
    message = #r.problems .. " problem" .. (#r.problems > 1 and "s" or "") .. " in the "
      .. what .. ", nothing was sent: " .. table.concat(parts, "; "),
    details = r.problems, warnings = r.warnings,
  }
end

--- Each returns true, warnings or nil, error value.
function M.client(body, opts)
  local r = report()
  M.client_into(r, body, "", { creating = opts and opts.creating })
  return finish(r, "client")
end

function M.payment_register(body, opts)
  local requesting = opts and opts.request   -- a payment link: paid later
  local r = report()
  if type(body) ~= "table" then r:add("body", "must be a table"); return finish(r, "payment") end
  local automation = body.automation_type or "none"
  local known = { none = 1, pue_invoice = 1, ppd_invoice_and_complement = 1, receipt = 1,
    stamp_invoice = 1, payment = 1 }
  if not known[automation] then
    r:add("automation_type", "must be one of none, pue_invoice, ppd_invoice_and_complement, receipt")
  end
  local c = body.client
  if not given(c) then r:add("client", "is required")
  elseif type(c) ~= "table" then r:add("client", "must be an object")
  elseif not given(c.id) then
    -- a PUE payment without an RFC is registered and invoiced later from
    -- the self-invoice portal; an email search creates the client from it
    local search = type(c.search) == "table" and c.search or {}
    M.client_into(r, c, "client.", { require_tax_id = automation == "ppd_invoice_and_complement",
      -- with an RFC, a PUE payment is invoiced now: the receptor needs its zip
      invoiced_with_rfc = automation == "pue_invoice" or automation == "stamp_invoice",
      creating = search.auto_create == true and search.on_key ~= "email" })
  end
  items_into(r, body.items, "unit_price")
  currency_into(r, body)
  local forma = forma_into(r, "payment_form", body.payment_form)
  if automation == "pue_invoice" or automation == "stamp_invoice" then
    if not forma and not requesting then r:add("payment_form", "is required for a PUE invoice")
    elseif forma == "99" then r:add("payment_form", "99 (por definir) is not allowed on a PUE invoice") end
  elseif automation == "ppd_invoice_and_complement" and requesting then
    if forma and forma ~= "99" then
      r:add("payment_form", "must be 99 (por definir) on a PPD invoice; the complement carries the real form")
    end
  elseif automation == "ppd_invoice_and_complement" and (not forma or forma == "99") then
    -- registered means collected: the complement is issued now, and its
    -- FormaDePagoP says how the money arrived (the PPD invoice keeps 99)
    r:add("payment_form", "a registered ppd_invoice_and_complement payment issues its complement now: "
      .. "give how the money arrived (c_FormaPago, never 99 in a complement)")
  end
  if body.paid == true and not forma then r:add("payment_form", "is required when paid is true") end
  return finish(r, "payment")
end

--- Older generation: POST /payments.
function M.payment_create(body)
  local r = report()
  if type(body) ~= "table" then r:add("body", "must be a table"); return finish(r, "payment") end
  if not given(body.clientId) and not given(body.client) and not given(body.email) then
    r:add("clientId", "clientId, client or email is required")
  elseif type(body.client) == "table" then
    M.client_into(r, body.client, "client.", {})
  end
  items_into(r, body.items, "total")
  currency_into(r, body)
  local forma = forma_into(r, "paymentMethod", body.paymentMethod)
  if body.paid == true and not forma then r:add("paymentMethod", "is required when paid is true") end
  if body.automateIncomeInvoiceAndComplement == true and (body.paid == true or given(body.paymentMethod)) then
    r:add("automateIncomeInvoiceAndComplement", "cannot be combined with paid or paymentMethod")
  end
  return finish(r, "payment")
end

--- POST /invoices/income body.
function M.invoice(body)
  local r = report()
  if type(body) ~= "table" then r:add("body", "must be a table"); return finish(r, "invoice") end
  local c = body.client
  local persona, regimen, tax_id
  if not given(c) then r:add("client", "is required")
  elseif type(c) == "table" and not given(c.id) then
    persona, regimen = M.client_into(r, c, "client.", { require_tax_id = true, use_given = given(body.use) })
    tax_id = c.tax_id or c.rfc
  end
  items_into(r, body.items, "unit_price")
  currency_into(r, body)
  local forma = forma_into(r, "payment_form", body.payment_form)
  local method = body.payment_method
  if given(method) and not sat.metodo_pago(tostring(method)) then
    r:add("payment_method", tostring(method) .. " must be PUE or PPD", "CFDI40124")
  elseif method == "PPD" and forma and forma ~= "99" then
    r:add("payment_form", "must be 99 (por definir) when payment_method is PPD", "CFDI40105")
  elseif method == "PUE" and forma == "99" then
    r:add("payment_form", "99 (por definir) is not allowed when payment_method is PUE")
  end
  if given(body.use) then M.uso_into(r, "use", tostring(body.use), persona, regimen, tax_id) end
  return finish(r, "invoice")
end

return M
