--- Items of payments, invoices and receipts: validation, service
-- lookup (item.id / item.search on sku), and amounts computed with
-- gigstack.fiscal.tax (per-concept rounding, CFDI 4.0 grouping).
local json = require "gigstack.async.json"
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"
local tax = require "gigstack.fiscal.tax"

local M = {}

--- Validate one register item's quantity and taxes, then compute its
-- amounts with gigstack.fiscal.tax (the SAT's per-concept rounding, in cents).
function M.line(c, item, path, price_cents)
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
    local ok, gross = pcall(tax.unit_price_from_gross, price, inclusive, 6)
    if not ok then c:add(path .. ".unit_price", "is out of range"); return nil end
    price = gross
  end
  local discount = c:amount(item, "discount", path .. ".discount")
  local ok, line = pcall(tax.line, { quantity = qty, unit_price = price, taxes = specs, decimals = 2,
    discount = discount and decimal.from_units(discount, 2) })
  if not ok then
    c:add(path .. ".unit_price", "quantity × unit_price is out of range")
    return nil
  end
  if line.descuento > line.importe then
    c:add(path .. ".discount", "must not exceed quantity × unit_price")
    return nil
  end
  return line
end

-- Document totals from the computed lines, grouped and rounded as a
-- CFDI's (gigstack.fiscal.tax.document).
function M.totals(payment, lines, currency)
  local doc = tax.document{ lines = lines, currency = currency }
  local places = sat.decimals(currency)
  local function raw(d) return json.raw((d or decimal.zero):format(places)) end
  payment.subtotal = raw(doc.subtotal)
  payment.taxes = raw(doc.total_traslados)
  payment.withholding_taxes = raw(doc.total_retenidos)
  payment.total = raw(doc.total)
end


-- An item may name a service: {id} or {search = {on_key = "sku", on_value,
-- auto_create}}; the service's fields fill what the item leaves out.
local function resolve_service(ctx, c, item, path)
  local svc
  if type(item.id) == "string" then svc = ctx.store:get(ctx.team, "services", item.id) end
  local search = item.search
  if not svc and type(search) == "table" then
    local key = search.on_key or "sku"
    local coll = ctx.store:coll(ctx.team, "services")
    for _, id in ipairs(coll.order) do
      local s = coll.items[id]
      if s and s[key] ~= nil and tostring(s[key]) == tostring(search.on_value) then svc = s; break end
    end
    -- created only while the request is still valid: a failed call changes nothing
    if not svc and search.auto_create == true and #c.problems == 0 then
      svc = ctx.store:insert(ctx.team, "services", { id = ctx.store:id("service"), object = "service",
        description = item.description, sku = item.sku or (key == "sku" and search.on_value or nil),
        unit_price = item.unit_price, product_key = item.product_key, unit_key = item.unit_key,
        unit_name = item.unit_name, taxes = item.taxes or json.array(), created_at = ctx.store:now() })
      ctx:event("service.created", svc)
    end
  end
  if not svc and type(item.id) == "string" and not search then
    c:add(path .. ".id", "service " .. item.id .. " not found")
  end
  return svc
end

--- Validate and price a list of items. Returns out_items (copies with
-- exact decimals) and lines (gigstack.fiscal.tax lines), or adds problems to c.
function M.items(ctx, c, items)
  local lines, out = {}, json.array()
  for i, item in ipairs(items or {}) do
    local path = "items[" .. i .. "]"
    if type(item) ~= "table" then
      c:add(path, "must be an object")
    else
      local copy = {}
      local svc = resolve_service(ctx, c, item, path)
      if svc then
        for _, k in ipairs{ "description", "unit_price", "product_key", "unit_key", "unit_name", "sku", "taxes" } do
          if copy[k] == nil then copy[k] = svc[k] end
        end
        copy.id = svc.id
      end
      for k, v in pairs(item) do if k ~= "search" then copy[k] = v end end
      if type(copy.unit_price) == "table" then copy.unit_price = tonumber(copy.unit_price.text) end
      c:string(copy, "description", path .. ".description", true)
      local price = c:amount(copy, "unit_price", path .. ".unit_price", true)
      lines[#lines + 1] = M.line(c, copy, path, price)
      copy.product_key = copy.product_key or "01010101"
      copy.unit_key = copy.unit_key or "E48"
      if price then copy.unit_price = json.raw(decimal.from_units(price, 2):format(2)) end
      out[#out + 1] = copy
    end
  end
  return out, lines
end

return M
