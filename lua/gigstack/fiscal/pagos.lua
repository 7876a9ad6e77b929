--- Complemento para recepción de pagos 2.0 (pago20:Pagos): the taxes a
-- payment carries in proportion to what it pays of each related invoice
-- (ImpuestosDR), their sums per payment (ImpuestosP) and the MXN totals
-- (Totales), built as a gigstack.fiscal.cfdi_xml node.
--
-- Proportion: a payment of ImpPagado against an invoice of Total carries
-- BaseDR = Base × ImpPagado / Total of each of the invoice's taxes (half-up
-- to the currency's decimals) and ImporteDR = BaseDR × TasaOCuota (Tasa),
-- or Importe × ImpPagado / Total (Cuota); a payment of the whole balance
-- in one go therefore repeats the invoice's own bases and amounts.
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"
local xml = require "gigstack.fiscal.cfdi_xml"

local M = {}

local D = decimal.new

-- a * num / den, half-up to `places`
local function prorate(a, num, den, places)
  if num == den then return a:round(places) end
  return a:mul(num):div(den, places)
end

-- The invoice's taxes grouped from its lines: traslados and retenciones
-- by (impuesto, tipo factor, tasa), each with its summed base and amount.
local function groups(doc)
  local out = { traslados = {}, retenciones = {} }
  for _, kind in ipairs{ "traslados", "retenciones" } do
    local index = {}
    for _, l in ipairs(doc.lines) do
      for _, t in ipairs(l[kind]) do
        local key = t.impuesto .. "|" .. t.tipo_factor .. "|" .. (t.tasa and t.tasa:format(6) or "")
        local g = index[key]
        if not g then
          g = { impuesto = t.impuesto, tipo_factor = t.tipo_factor, tasa = t.tasa,
            base = decimal.zero, importe = t.importe and decimal.zero or nil }
          index[key] = g
          out[kind][#out[kind] + 1] = g
        end
        g.base = g.base + t.base
        if t.importe then g.importe = g.importe + t.importe end
      end
    end
  end
  return out
end

local function code(name) return sat.impuesto_code(name) or name end

--- The taxes of one DoctoRelacionado: {traslados, retenciones}, each
-- {impuesto, tipo_factor, tasa, base, importe} in the invoice's currency.
function M.docto_taxes(doc, pagado, places)
  local total = D(doc.total)
  pagado = D(pagado)
  local g = groups(doc)
  local out = { traslados = {}, retenciones = {} }
  for _, kind in ipairs{ "traslados", "retenciones" } do
    for _, t in ipairs(g[kind]) do
      local base = prorate(t.base, pagado, total, places)
      local importe
      if t.tipo_factor == "Tasa" then importe = base:mul(t.tasa, places)
      elseif t.tipo_factor == "Cuota" then importe = prorate(t.importe, pagado, total, places) end
      out[kind][#out[kind] + 1] = { impuesto = t.impuesto, tipo_factor = t.tipo_factor, tasa = t.tasa,
        base = base, importe = importe }
    end
  end
  return out
end

--- The pago20:Pagos node and its figures. spec: fecha_pago, forma (never
-- 99), moneda, tipo_cambio (text; "1" or nil for MXN), monto (Decimal),
-- doctos = {{uuid, serie, folio, moneda, parcialidad, saldo_ant, pagado,
-- insoluto, doc = gigstack.fiscal.tax.document of the invoice}} (one currency:
-- EquivalenciaDR 1). Returns node, summary {monto, totales = {...}}.
function M.build(spec)
  if spec.forma == "99" or spec.forma == nil then
    error("FormaDePagoP: a payment's form is how the money arrived; 99 (por definir) is not one", 2)
  end
  local places = sat.decimals(spec.moneda) or 2
  local tc = D(spec.moneda == "MXN" and "1" or spec.tipo_cambio)
  local pago = { { "FechaPago", spec.fecha_pago }, { "FormaDePagoP", spec.forma }, { "MonedaP", spec.moneda },
    { "TipoCambioP", spec.moneda == "MXN" and "1" or xml.exact(tc, 0, 6) },
    { "Monto", xml.amount(spec.monto, places) } }
  local ptras, pret, porder, rorder = {}, {}, {}, {}
  for _, d in ipairs(spec.doctos) do
    local taxes = M.docto_taxes(d.doc, d.pagado, places)
    local objeto = (#taxes.traslados + #taxes.retenciones > 0) and "02" or "01"
    local items = { { "IdDocumento", d.uuid }, { "Serie", d.serie }, { "Folio", d.folio and tostring(d.folio) },
      { "MonedaDR", d.moneda }, { "EquivalenciaDR", "1" }, { "NumParcialidad", tostring(d.parcialidad) },
      { "ImpSaldoAnt", xml.amount(d.saldo_ant, places) }, { "ImpPagado", xml.amount(d.pagado, places) },
      { "ImpSaldoInsoluto", xml.amount(d.insoluto, places) }, { "ObjetoImpDR", objeto } }
    if objeto == "02" then
      local imp = {}
      if #taxes.retenciones > 0 then
        local rs = {}
        for _, t in ipairs(taxes.retenciones) do
          rs[#rs + 1] = xml.tax_node("pago20:RetencionDR", t, places, "DR")
          local p = pret[t.impuesto]
          if not p then p = { impuesto = t.impuesto, importe = decimal.zero }; pret[t.impuesto] = p
            rorder[#rorder + 1] = p end
          p.importe = p.importe + t.importe
        end
        imp[#imp + 1] = xml.node("pago20:RetencionesDR", rs)
      end
      if #taxes.traslados > 0 then
        local ts = {}
        for _, t in ipairs(taxes.traslados) do
          ts[#ts + 1] = xml.tax_node("pago20:TrasladoDR", t, places, "DR")
          local key = t.impuesto .. "|" .. t.tipo_factor .. "|" .. (t.tasa and t.tasa:format(6) or "")
          local p = ptras[key]
          if not p then
            p = { impuesto = t.impuesto, tipo_factor = t.tipo_factor, tasa = t.tasa, base = decimal.zero,
              importe = t.importe and decimal.zero or nil }
            ptras[key] = p
            porder[#porder + 1] = p
          end
          p.base = p.base + t.base
          if t.importe then p.importe = p.importe + t.importe end
        end
        imp[#imp + 1] = xml.node("pago20:TrasladosDR", ts)
      end
      items[#items + 1] = xml.node("pago20:ImpuestosDR", imp)
    end
    pago[#pago + 1] = xml.node("pago20:DoctoRelacionado", items)
  end
  if #porder + #rorder > 0 then
    local imp = {}
    if #rorder > 0 then
      local rs = {}
      for _, p in ipairs(rorder) do
        rs[#rs + 1] = xml.node("pago20:RetencionP", { { "ImpuestoP", code(p.impuesto) },
          { "ImporteP", xml.amount(p.importe, places) } })
      end
      imp[#imp + 1] = xml.node("pago20:RetencionesP", rs)
    end
    if #porder > 0 then
      local ts = {}
      for _, p in ipairs(porder) do ts[#ts + 1] = xml.tax_node("pago20:TrasladoP", p, places, "P") end
      imp[#imp + 1] = xml.node("pago20:TrasladosP", ts)
    end
    pago[#pago + 1] = xml.node("pago20:ImpuestosP", imp)
  end
  -- Totales: in MXN (× TipoCambioP), half-up to cents
  local function mxn(d) return d:mul(tc, 2) end
  local totales = {}
  for _, p in ipairs(rorder) do
    local key = "TotalRetenciones" .. p.impuesto
    totales[key] = (totales[key] or decimal.zero) + mxn(p.importe)
  end
  for _, p in ipairs(porder) do
    if p.impuesto == "IVA" then
      local suffix = p.tipo_factor == "Exento" and "Exento"
        or ({ ["0.160000"] = "16", ["0.080000"] = "8", ["0.000000"] = "0" })[p.tasa:format(6)]
      if suffix then
        local bk = "TotalTrasladosBaseIVA" .. suffix
        totales[bk] = (totales[bk] or decimal.zero) + mxn(p.base)
        if suffix ~= "Exento" then
          local ik = "TotalTrasladosImpuestoIVA" .. suffix
          totales[ik] = (totales[ik] or decimal.zero) + mxn(p.importe)
        end
      end
    end
  end
  totales.MontoTotalPagos = mxn(D(spec.monto))
  local titems = {}
  for _, k in ipairs{ "TotalRetencionesIVA", "TotalRetencionesISR", "TotalRetencionesIEPS",
    "TotalTrasladosBaseIVA16", "TotalTrasladosImpuestoIVA16", "TotalTrasladosBaseIVA8",
    "TotalTrasladosImpuestoIVA8", "TotalTrasladosBaseIVA0", "TotalTrasladosImpuestoIVA0",
    "TotalTrasladosBaseIVAExento", "MontoTotalPagos" } do
    titems[#titems + 1] = { k, totales[k] and xml.amount(totales[k], 2) }
  end
  local node = xml.node("pago20:Pagos", { { "Version", "2.0" }, xml.node("pago20:Totales", titems),
    xml.node("pago20:Pago", pago) })
  return node, { monto = D(spec.monto), totales = totales }
end

return M
