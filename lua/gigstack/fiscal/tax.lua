--- CFDI 4.0 tax arithmetic on exact decimals (gigstack.fiscal.decimal):
-- per-concept Importe, Descuento, Base, traslados and retenciones, the
-- comprobante totals (grouped and rounded as the SAT checks them), the
-- SAT lower/upper limits, and tax-inclusive price back-calculation.
-- Worked examples: shared/reference/cfdi-domain.md §3.6.
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"

local M = {}

-- Common rates (cfdi-domain.md §3.5), as written in the XML.
M.IVA = "0.160000"
M.IVA_BORDER = "0.080000"
M.IVA_ZERO = "0.000000"
M.RET_IVA_TWO_THIRDS = "0.106667"
M.RET_IVA_FREIGHT = "0.040000"
M.RET_IVA_SUBCONTRACT = "0.060000"
M.RET_ISR_FEES = "0.100000"
M.RET_ISR_RESICO = "0.012500"

local D = decimal.new

local function norm_tax(t, i)
  local impuesto = sat.impuesto(t.type or t.impuesto)
  if not impuesto then error(string.format("taxes[%d].type: must be IVA, ISR or IEPS", i), 3) end
  local factor = t.factor or t.tipo_factor or "Tasa"
  local rate = nil
  if factor ~= "Exento" then rate = D(t.rate or t.tasa):round(6) end
  return { impuesto = impuesto, tipo_factor = factor, tasa = rate,
    withholding = t.withholding == true or t.retencion == true }
end

--- One concept. spec: quantity, unit_price, discount, taxes = {{type,
-- factor, rate, withholding}}, decimals (of the amounts written; default
-- 2, at most 6). Returns {importe, descuento, base, traslados,
-- retenciones}; every amount a Decimal rounded half-up to `decimals`.
function M.line(spec)
  local places = spec.decimals or 2
  local qty = D(spec.quantity or 1)
  local importe = qty:mul(D(spec.unit_price), places)
  local descuento = D(spec.discount or 0):round(places)
  local base = importe - descuento
  local line = { quantity = qty, unit_price = D(spec.unit_price), importe = importe,
    descuento = descuento, base = base, traslados = {}, retenciones = {} }
  local taxes = {}
  for i, t in ipairs(spec.taxes or {}) do taxes[i] = norm_tax(t, i) end
  -- IEPS first: a transferred IVA is computed on the price plus IEPS (LIVA art. 18)
  local ieps = decimal.zero
  for pass = 1, 2 do
    for _, t in ipairs(taxes) do
      if (pass == 1) == (t.impuesto == "IEPS") then
        local tbase = base
        if t.impuesto == "IVA" and not t.withholding then tbase = base + ieps end
        local amount
        if t.tipo_factor == "Tasa" then amount = tbase:mul(t.tasa, places)
        elseif t.tipo_factor == "Cuota" then amount = qty:mul(t.tasa, places) end
        if t.impuesto == "IEPS" and amount and not t.withholding then ieps = ieps + amount end
        local entry = { impuesto = t.impuesto, tipo_factor = t.tipo_factor, tasa = t.tasa,
          base = tbase, importe = amount }
        local list = t.withholding and line.retenciones or line.traslados
        list[#list + 1] = entry
      end
    end
  end
  return line
end

--- Totals of a comprobante from its concepts (cfdi-domain.md §3.4):
-- traslados grouped by (impuesto, tipo factor, tasa), retenciones by
-- impuesto, each sum rounded to the currency's decimals. spec: lines
-- (as for M.line, or results of it), currency (default MXN).
function M.document(spec)
  local currency = spec.currency or "MXN"
  local dm = sat.decimals(currency)
  if not dm then error("currency: " .. tostring(currency) .. " is not a c_Moneda code", 2) end
  local lines, subtotal, descuento = {}, decimal.zero, decimal.zero
  local has_discount = false
  local tgroups, torder, rgroups, rorder = {}, {}, {}, {}
  for i, l in ipairs(spec.lines) do
    if not l.importe then
      local s = {}
      for k, v in pairs(l) do s[k] = v end
      s.decimals = s.decimals or spec.line_decimals or dm
      l = M.line(s)
    end
    lines[i] = l
    subtotal = subtotal + l.importe
    if l.descuento:sign() ~= 0 then has_discount = true end
    descuento = descuento + l.descuento
    for _, t in ipairs(l.traslados) do
      local key = t.impuesto .. "|" .. t.tipo_factor .. "|" .. (t.tasa and t.tasa:format(6) or "")
      local g = tgroups[key]
      if not g then
        g = { impuesto = t.impuesto, tipo_factor = t.tipo_factor, tasa = t.tasa,
          base = decimal.zero, importe = t.importe and decimal.zero or nil }
        tgroups[key] = g
        torder[#torder + 1] = key
      end
      g.base = g.base + t.base
      if t.importe then g.importe = g.importe + t.importe end
    end
    for _, t in ipairs(l.retenciones) do
      local g = rgroups[t.impuesto]
      if not g then
        g = { impuesto = t.impuesto, importe = decimal.zero }
        rgroups[t.impuesto] = g
        rorder[#rorder + 1] = t.impuesto
      end
      if t.importe then g.importe = g.importe + t.importe end
    end
  end
  local doc = { currency = currency, lines = lines, subtotal = subtotal:round(dm),
    descuento = has_discount and descuento:round(dm) or nil, traslados = {}, retenciones = {} }
  local tt, tr, any_rate = decimal.zero, decimal.zero, false
  for _, key in ipairs(torder) do
    local g = tgroups[key]
    g.base = g.base:round(dm)
    if g.importe then
      g.importe = g.importe:round(dm)
      tt = tt + g.importe
      any_rate = true
    end
    doc.traslados[#doc.traslados + 1] = g
  end
  for _, key in ipairs(rorder) do
    local g = rgroups[key]
    g.importe = g.importe:round(dm)
    tr = tr + g.importe
    doc.retenciones[#doc.retenciones + 1] = g
  end
  -- all-Exento documents carry no TotalImpuestosTrasladados
  doc.total_traslados = any_rate and tt:round(dm) or nil
  doc.total_retenidos = #doc.retenciones > 0 and tr:round(dm) or nil
  doc.total = (doc.subtotal - (doc.descuento or decimal.zero) + tt - tr):round(dm)
  return doc
end

local function decimals_of(d)
  return decimal.parse(d).scale
end

--- SAT limits for a tax Importe (cfdi-domain.md §3.3): base as written
-- (its decimals count), rate, decimals of the Importe. Returns li, ls.
function M.limits(base, rate, places)
  local b = D(base)
  local db = decimals_of(base)
  if type(base) == "string" then db = #(base:match("%.(%d+)$") or "") end
  places = places or 2
  local half = decimal.from_units(5, db + 1)
  local tiny = decimal.from_units(1, 12)
  local r = D(rate)
  local li = (b - half):mul_to(r, places, "down")
  local ls = (b + half - tiny):mul_to(r, places, "up")
  return li, ls
end

--- Is `amount` within the SAT limits for base × rate?
function M.within_limits(amount, base, rate, places)
  local li, ls = M.limits(base, rate, places)
  local a = D(amount)
  return li <= a and a <= ls, li, ls
end

--- Unit price (6 decimals) that makes `gross` per unit, taxes
-- included: gross / (1 + transferred rates − withheld rates).
function M.unit_price_from_gross(gross, taxes, places)
  local factor = D(1)
  for i, t in ipairs(taxes or {}) do
    local n = norm_tax(t, i)
    if n.tipo_factor == "Tasa" then
      factor = n.withholding and (factor - n.tasa) or (factor + n.tasa)
    end
  end
  return D(gross):div(factor, places or 6)
end

return M
