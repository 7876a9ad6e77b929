--- Validation before sending: client, payment and invoice payloads are
-- checked against the RFC rules, the SAT catalogs and the CFDI rules a
-- PAC would reject. Every problem is collected with its field path and
-- rule; one error value lists them all and no request is made.
local rfc = require "gigstack.fiscal.rfc"
local sat = require "gigstack.fiscal.sat"
local decimal = require "gigstack.fiscal.decimal"
local errors = require "gigstack.async.errors"
local json = require "gigstack.async.json"

local M = {}

local Report = {}
Report.__index = Report

local function report()
  return setmetatable({ problems = {}, warnings = {} }, Report)
end

function Report:add(field, rule)
  self.problems[#self.problems + 1] = { field = field, rule = rule, message = rule }
end

function Report:warn(field, text)
  self.warnings[#self.warnings + 1] = { field = field, message = text }
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

--- Client fields (prefix: "" or "client."). Returns the persona type.
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
  if given(regimen) then
    regimen = tostring(regimen)
    if not sat.regimen(regimen) then
      r:add(prefix .. "tax_system", regimen .. " is not a c_RegimenFiscal code")
    elseif persona == "generic" and regimen ~= "616" then
      r:add(prefix .. "tax_system", "must be 616 (sin obligaciones fiscales) for the generic RFC " .. tax_id)
    elseif persona ~= "generic" and persona and not sat.regimen_allows(regimen, persona) then
      r:add(prefix .. "tax_system", "régimen " .. regimen .. " is not for personas "
        .. (persona == "fisica" and "físicas" or "morales"))
    end
  end
  if given(c.use) then
    local uso = tostring(c.use)
    if persona == "generic" and uso ~= "S01" and uso ~= "CP01" then
      r:add(prefix .. "use", "must be S01 (sin efectos fiscales) for the generic RFC " .. tax_id)
    elseif not sat.uso(uso) then
      r:add(prefix .. "use", uso .. " is not a c_UsoCFDI code (CFDI 4.0)")
    elseif given(regimen) and sat.regimen(tostring(regimen)) and persona ~= "generic" then
      local ok, why = sat.uso_allows(uso, tostring(regimen), persona)
      if not ok then r:add(prefix .. "use", "uso " .. uso .. " " .. why) end
    end
  end
  local address = c.address
  if given(address) then
    if type(address) ~= "table" then r:add(prefix .. "address", "must be an object")
    elseif given(address.zip) and not tostring(address.zip):match("^%d%d%d%d%d$") then
      r:add(prefix .. "address.zip", "must be a 5-digit código postal")
    end
  end
  if given(c.email) and not tostring(c.email):match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    r:add(prefix .. "email", "must be an email address")
  end
  return persona
end

local function taxes_into(r, taxes, path)
  if not given(taxes) then return end
  if type(taxes) ~= "table" then r:add(path, "must be an array"); return end
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
        if not ok then r:add(tp .. ".rate", why) end
      end
    end
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
        r:add(p .. ".product_key", "must be an 8-digit c_ClaveProdServ code")
      end
      taxes_into(r, it.taxes, p .. ".taxes")
    end
  end
end

local function currency_into(r, body)
  if given(body.currency) then
    local cur = tostring(body.currency)
    if not sat.moneda(cur) then r:add("currency", cur .. " is not a c_Moneda code")
    elseif cur ~= "MXN" and cur ~= "XXX" and not given(body.exchange_rate) and not given(body.exchange) then
      r:add("exchange_rate", "is required when currency is " .. cur)
    end
  end
end

local function forma_into(r, field, v)
  if given(v) and not sat.forma_pago(tostring(v)) then
    r:add(field, tostring(v) .. " is not a c_FormaPago code")
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
      creating = search.auto_create == true and search.on_key ~= "email" })
  end
  items_into(r, body.items, "unit_price")
  currency_into(r, body)
  local forma = forma_into(r, "payment_form", body.payment_form)
  if automation == "pue_invoice" or automation == "stamp_invoice" then
    if not forma and not requesting then r:add("payment_form", "is required for a PUE invoice")
    elseif forma == "99" then r:add("payment_form", "99 (por definir) is not allowed on a PUE invoice") end
  elseif automation == "ppd_invoice_and_complement" and forma and forma ~= "99" then
    r:add("payment_form", "must be 99 (por definir) on a PPD invoice; the complement carries the real form")
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
  if not given(c) then r:add("client", "is required")
  elseif type(c) == "table" and not given(c.id) then
    M.client_into(r, c, "client.", { require_tax_id = true })
  end
  items_into(r, body.items, "unit_price")
  currency_into(r, body)
  local forma = forma_into(r, "payment_form", body.payment_form)
  local method = body.payment_method
  if given(method) and not sat.metodo_pago(tostring(method)) then
    r:add("payment_method", tostring(method) .. " must be PUE or PPD")
  elseif method == "PPD" and forma and forma ~= "99" then
    r:add("payment_form", "must be 99 (por definir) when payment_method is PPD")
  elseif method == "PUE" and forma == "99" then
    r:add("payment_form", "99 (por definir) is not allowed when payment_method is PUE")
  end
  if given(body.use) and not sat.uso(tostring(body.use)) then
    r:add("use", tostring(body.use) .. " is not a c_UsoCFDI code (CFDI 4.0)")
  end
  return finish(r, "invoice")
end

return M
