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
-- factor, rate, withholding}}, currency (default MXN), decimals (of the
-- amounts written; default: the currency's c_Moneda decimals, at most 6).
-- Returns {importe, descuento, base, traslados, retenciones}; every
-- amount a Decimal rounded half-up to `decimals`.
--
-- Bases (cfdi-domain.md §3.2): a Tasa tax is on Importe − Descuento; an
-- IVA, transferred or withheld, is on that plus the transferred IEPS
-- (LIVA art. 18: the IVA withheld is a part of the IVA transferred, so it
-- has the same base); a Cuota tax's Base is the number of units
-- (Cantidad, e.g. litres) and its Importe is Base × TasaOCuota.
function M.line(spec)
  local places = spec.decimals
  if not places then
    local currency = spec.currency or "MXN"
    places = sat.decimals(currency)
    if not places then error("currency: " .. tostring(currency) .. " is not a c_Moneda code", 2) end
  end
  local qty = D(spec.quantity or 1)
  local importe = qty:mul(D(spec.unit_price), places)
  local descuento = D(spec.discount or 0):round(places)
  local base = importe - descuento
  local line = { quantity = qty, unit_price = D(spec.unit_price), importe = importe,
    descuento = descuento, base = base, traslados = {}, retenciones = {} }
  local taxes = {}
  for i, t in ipairs(spec.taxes or {}) do taxes[i] = norm_tax(t, i) end
  -- IEPS first: an IVA is computed on the price plus the transferred IEPS
  local ieps = decimal.zero
  for pass = 1, 2 do
    for _, t in ipairs(taxes) do
      if (pass == 1) == (t.impuesto == "IEPS") then
        local tbase = base
        if t.impuesto == "IVA" then tbase = base + ieps end
        if t.tipo_factor == "Cuota" then tbase = qty end
        local amount
        if t.tipo_factor ~= "Exento" then amount = tbase:mul(t.tasa, places) end
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

--- Decimals the SAT counts for a base (cfdi-domain.md §3.3: as written
-- in the XML). A string or Decimal says it itself ("10000" has 0, "10000.00"
-- 2); a Lua number carries no written form (10000.0 prints "10000"), so it
-- is read as it would be written: at least the Importe's decimals.
local function base_decimals(base, places)
  if type(base) == "string" then return #(base:match("%.(%d+)%s*$") or "") end
  local d = D(base)
  if type(base) == "number" then return math.max(d.scale, places) end
  return d.scale
end

--- SAT limits for a tax Importe (cfdi-domain.md §3.3): base as written
-- (its decimals count; see base_decimals), rate, decimals of the Importe
-- (the currency's, default 2). Returns li, ls.
function M.limits(base, rate, places)
  places = places or 2
  local b = D(base)
  local db = base_decimals(base, places)
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
-- included, with the arithmetic of M.line: IEPS on the price (Tasa R) or
-- per unit (Cuota C), IVA transferred (T) and withheld (V) on price + IEPS,
-- other withholdings on the price (W) or per unit (Cuota K):
--   gross = (p·(1 + R) + C)·(1 + T − V) − p·W − K
--   p     = (gross − C·(1 + T − V) + K) / ((1 + R)·(1 + T − V) − W)
-- e.g. IEPS 8 % and IVA 16 % divide by 1.08 × 1.16 = 1.2528, not 1.24.
function M.unit_price_from_gross(gross, taxes, places)
  local R, C, F, W, K = decimal.zero, decimal.zero, D(1), decimal.zero, decimal.zero
  for i, t in ipairs(taxes or {}) do
    local n = norm_tax(t, i)
    if n.tipo_factor == "Tasa" then
      if n.impuesto == "IVA" then
        F = n.withholding and (F - n.tasa) or (F + n.tasa)
      elseif n.impuesto == "IEPS" and not n.withholding then
        R = R + n.tasa
      else
        W = W + n.tasa
      end
    elseif n.tipo_factor == "Cuota" then
      if n.impuesto == "IEPS" and not n.withholding then C = C + n.tasa else K = K + n.tasa end
    end
  end
  local divisor = (D(1) + R):mul(F) - W
  if divisor.scale > 10 then divisor = divisor:round(10) end
  if divisor:sign() <= 0 then error("taxes: the withholdings leave nothing of the price", 2) end
  local numerator = D(gross) - C:mul(F) + K
  return numerator:div(divisor, places or 6)
end

return M
