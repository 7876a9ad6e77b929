--- Items of payments, invoices and receipts: validation, service
-- lookup (item.id / item.search on sku), and amounts computed with
-- gigstack.fiscal.tax (per-concept rounding, CFDI 4.0 grouping).
local json = require "gigstack.async.json"
local decimal = require "gigstack.fiscal.decimal"
local money = require "gigstack.fiscal.money"
local sat = require "gigstack.fiscal.sat"
local tax = require "gigstack.fiscal.tax"

local M = {}

--- The emulator's exchange rates to MXN (text: exact decimals).
M.RATES = { MXN = "1", USD = "17.250000", EUR = "18.700000" }

-- ===== fast path: integer cents =====
--
-- The common line (a whole quantity, a price in cents, Tasa or Exento
-- taxes, nothing near the range limits) is priced in integer cents and
-- micro-units instead of Decimal tables: the same half-up rounding as
-- gigstack.fiscal.tax, so the same amounts (spec/mock_fast_spec.lua
-- compares both paths over generated lines). Anything else, or any
-- figure past SMALL (where a product could leave a Lua integer), takes
-- the general path. Only M.items makes such "compact" lines; M.line
-- without `compact` returns tax.line's Decimal line as before.

local SMALL = 3037000499          -- a, b <= SMALL: a * b fits a Lua integer
local MICRO = 1000000             -- rates at 6 decimals, as tax.line reads them
local MAX_QTY, MAX_PRICE = 1000000, 1000000000000

-- rate (a Lua number) -> its micro-units as tax.line rounds it
-- (decimal.new(rate):round(6)), or false; bounded: emptied when full
local micro_cache, micro_cached = {}, 0

-- the metatable that marks a compact line
local Compact = { __name = "gigstack.mock.amounts.compact" }

local function micro_of(rate)
  local m = micro_cache[rate]
  if m ~= nil then return m end
  m = false
  if rate ~= rate then return m end
  local d = decimal.parse(rate)
  if d then
    local ok, r = pcall(d.round, d, 6)
    if ok and r.scale == 6 and r.coef >= 0 and r.coef <= SMALL then m = r.coef end
  end
  if micro_cached >= 256 then micro_cache, micro_cached = {}, 0 end
  micro_cache[rate] = m
  micro_cached = micro_cached + 1
  return m
end

-- x * micro / 10^6 rounded half-up, for 0 <= x, micro <= SMALL
local function tax_cents(x, micro)
  local p = x * micro
  local q, r = p // MICRO, p % MICRO
  if 2 * r >= MICRO then q = q + 1 end
  return q
end

--- The line's figures in integer cents, or nil when it is not the
-- common case. qty: the validated quantity; specs: as M.line builds them
-- (no tax-inclusive price); discount: cents or nil.
function M.fast_line(qty, price_cents, discount, specs)
  local q = math.tointeger(qty)
  if not q or q < 1 or q > MAX_QTY or price_cents < 0 or price_cents > MAX_PRICE then return nil end
  local importe = q * price_cents
  local descuento = discount or 0
  local base = importe - descuento
  -- (a discount past the importe: the general path, which refuses it)
  if descuento < 0 or base < 0 or base > SMALL then return nil end
  local ieps, tras, ret = 0, 0, 0
  -- IEPS first: an IVA is on the price plus the transferred IEPS (tax.line)
  for pass = 1, 2 do
    for i = 1, #specs do
      local t = specs[i]
      local impuesto = t.type
      if (pass == 1) == (impuesto == "IEPS") then
        if t.factor == "Tasa" then
          local micro = micro_of(t.rate)
          if not micro then return nil end
          local tbase = impuesto == "IVA" and base + ieps or base
          if tbase > SMALL then return nil end
          local amount = tax_cents(tbase, micro)
          if t.withholding then ret = ret + amount
          else
            tras = tras + amount
            if impuesto == "IEPS" then ieps = ieps + amount end
          end
        elseif t.factor ~= "Exento" then
          return nil                 -- Cuota: on the units, the general path
        end
      end
    end
  end
  -- slots, not fields: 8 array slots take a third of 8 hash fields' memory
  return setmetatable({ importe, descuento, tras, ret, qty, price_cents, discount or false, specs }, Compact)
end

--- Is `line` a compact one (M.fast_line's)? Its figures in cents:
-- importe, descuento, transferred and withheld taxes.
function M.is_compact(line) return getmetatable(line) == Compact end
function M.compact_figures(line) return line[1], line[2], line[3], line[4] end

-- The Decimal line (tax.line's) of a compact one: the general path's call.
local function materialize(line)
  local discount = line[7]
  return tax.line{ quantity = line[5], unit_price = decimal.from_units(line[6], 2),
    taxes = line[8], decimals = 2, discount = discount and decimal.from_units(discount, 2) }
end
M.materialize = materialize

--- Validate one register item's quantity and taxes, then compute its
-- amounts with gigstack.fiscal.tax (the SAT's per-concept rounding, in
-- cents). With `compact`, a common line may come back as M.fast_line's
-- integer figures (only M.totals reads those).
function M.line(c, item, path, price_cents, compact)
  local qty = item.quantity
  if qty == nil then qty = 1 end
  if type(qty) ~= "number" then
    c:add(path .. ".quantity", "must be a number"); qty = nil
  elseif qty <= 0 then
    c:add(path .. ".quantity", "must be greater than 0"); qty = nil
  elseif not (math.type(qty) == "integer" or (qty < 1e15 and qty == math.floor(qty))) then
    -- (a whole number reads with 0 decimals)
    local d = decimal.parse(qty)
    if not d or d.scale > 6 then   -- the CFDI's Cantidad takes at most 6 decimals
      c:add(path .. ".quantity", "must have at most 6 decimals (CFDI Cantidad)"); qty = nil
    end
  end
  local taxes = item.taxes
  if taxes ~= nil and taxes ~= json.null and type(taxes) ~= "table" then
    c:add(path .. ".taxes", "must be an array"); taxes = nil
  end
  local specs, inclusive, iva = {}, nil, nil
  if type(taxes) == "table" then
    for i, t in ipairs(taxes) do
      local impuesto = sat.impuesto(t.type)
      local factor = t.factor or "Tasa"
      local withholding = t.withholding == true
      if impuesto == "IVA" and not withholding then
        if iva then
          c:add(path .. ".taxes[" .. i .. "]", "a second transferred IVA on one line (taxes[" .. iva .. "])")
        end
        iva = iva or i
      end
      if not impuesto then
        c:add(path .. ".taxes[" .. i .. "].type", "must be IVA, ISR or IEPS")
      elseif factor ~= "Exento" and type(t.rate) ~= "number" then
        c:add(path .. ".taxes[" .. i .. "].rate", "must be a number (0.16 for IVA 16%)")
      else
        local ok, why = sat.tasa_allows(impuesto, factor, t.rate, withholding)
        if not ok then c:add(path .. ".taxes[" .. i .. "].rate", why)
        else
          local spec = { type = impuesto, factor = factor, rate = t.rate, withholding = withholding }
          specs[#specs + 1] = spec
          if t.inclusive == true then
            inclusive = inclusive or {}
            inclusive[#inclusive + 1] = spec
          end
        end
      end
    end
  end
  if not qty or not price_cents or #c.problems > 0 then return nil end
  local price
  if inclusive then
    -- the price includes these taxes: back to the pre-tax unit price
    local ok, gross = pcall(tax.unit_price_from_gross, decimal.from_units(price_cents, 2), inclusive, 6)
    if not ok then c:add(path .. ".unit_price", "is out of range"); return nil end
    price = gross
  end
  local discount = c:amount(item, "discount", path .. ".discount")
  local line = compact and not inclusive and M.fast_line(qty, price_cents, discount, specs)
  if not line then
    price = price or decimal.from_units(price_cents, 2)
    local ok
    ok, line = pcall(tax.line, { quantity = qty, unit_price = price, taxes = specs, decimals = 2,
      discount = discount and decimal.from_units(discount, 2) })
    if not ok then
      c:add(path .. ".unit_price", "quantity × unit_price is out of range")
      return nil
    end
  end
  -- (a compact line's base is never negative)
  if getmetatable(line) ~= Compact and line.descuento > line.importe then
    c:add(path .. ".discount", "must not exceed quantity × unit_price")
    return nil
  end
  return line
end

-- Document totals from the computed lines, grouped and rounded as a
-- CFDI's (gigstack.fiscal.tax.document). Lines all compact and a
-- currency of 2 decimals: every line amount is already in cents, so the
-- groups' roundings change nothing and the totals are integer sums.
function M.totals(payment, lines, currency)
  local places = sat.decimals(currency)
  local all_compact = places == 2
  for i = 1, #lines do
    if getmetatable(lines[i]) ~= Compact then all_compact = false; break end
  end
  if all_compact then
    local sub, desc, tt, tr = 0, 0, 0, 0
    for i = 1, #lines do
      local l = lines[i]
      sub, desc = sub + l[1], desc + l[2]
      tt, tr = tt + l[3], tr + l[4]
    end
    payment.subtotal = money.json(sub)
    payment.taxes = money.json(tt)
    payment.withholding_taxes = money.json(tr)
    payment.total = money.json(sub - desc + tt - tr)
    return
  end
  local full = lines
  for i = 1, #lines do
    if getmetatable(lines[i]) == Compact then
      if full == lines then full = table.move(lines, 1, #lines, 1, {}) end
      full[i] = materialize(lines[i])
    end
  end
  local doc = tax.document{ lines = full, currency = currency }
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
      lines[#lines + 1] = M.line(c, copy, path, price, true)
      copy.product_key = copy.product_key or "01010101"
      copy.unit_key = copy.unit_key or "E48"
      if not sat.clave_unidad(copy.unit_key) then
        c:add(path .. ".unit_key", "is not a c_ClaveUnidad code (CFDI40165)")
      end
      if price then copy.unit_price = json.raw(decimal.from_units(price, 2):format(2)) end
      out[#out + 1] = copy
    end
  end
  return out, lines
end

return M
