--- CFDI 4.0 documents as XML: a comprobante (income, egress, payment
-- with Pagos 2.0) built from the amounts gigstack.fiscal.tax computed, its
-- cadena original (the text the Sello signs, as the SAT's XSLT
-- cadenaoriginal_4_0 produces it), sealing, and the TimbreFiscalDigital
-- 1.1 with its own cadena and seal.
--
-- A document is a tree of nodes {name, items, cadena}: `items` lists
-- attributes ({name, value[, false]}; false keeps one out of the cadena)
-- and child nodes in the order the SAT's XSLT reads them. The XML writer
-- takes attributes then children from it; the cadena walks it in order.
-- The XSLT interleaves attributes and children in one place (cfdi:Impuestos:
-- Retenciones, TotalImpuestosRetenidos, Traslados, TotalImpuestosTrasladados),
-- which is why one ordered list holds both.
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"
local tz = require "gigstack.fiscal.tz"

local M = {}

M.NS_CFDI = "http://www.sat.gob.mx/cfd/4"
M.NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
M.NS_PAGOS = "http://www.sat.gob.mx/Pagos20"
M.NS_TFD = "http://www.sat.gob.mx/TimbreFiscalDigital"
M.LOC_CFDI = M.NS_CFDI .. " http://www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd"
M.LOC_PAGOS = M.NS_PAGOS .. " http://www.sat.gob.mx/sitio_internet/cfd/Pagos/Pagos20.xsd"
M.LOC_TFD = M.NS_TFD .. " http://www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd"

local D = decimal.new

-- ===== nodes, XML, cadena =====

--- A node; items as described above. opts.cadena = false keeps the whole
-- node out of the cadena original (the TFD inside cfdi:Complemento).
function M.node(name, items, opts)
  return { name = name, items = items or {}, cadena = not (opts and opts.cadena == false) }
end

local function is_node(x) return x.name ~= nil end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
  ["\n"] = "&#10;", ["\r"] = "&#13;", ["\t"] = "&#9;" }

function M.escape(s)
  return (tostring(s):gsub("[&<>\"\n\r\t]", ESC))
end

local function write(node, out, indent)
  local attrs, kids = {}, {}
  for _, it in ipairs(node.items) do
    if is_node(it) then kids[#kids + 1] = it
    elseif it[2] ~= nil then attrs[#attrs + 1] = string.format(' %s="%s"', it[1], M.escape(it[2])) end
  end
  out[#out + 1] = indent .. "<" .. node.name .. table.concat(attrs)
  if #kids == 0 then out[#out + 1] = "/>\n"; return end
  out[#out + 1] = ">\n"
  for _, k in ipairs(kids) do write(k, out, indent .. "  ") end
  out[#out + 1] = indent .. "</" .. node.name .. ">\n"
end

--- The document as UTF-8 XML text.
function M.serialize(node)
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n' }
  write(node, out, "")
  return table.concat(out)
end

-- XPath normalize-space: XML whitespace runs to one space, trimmed.
local function normalize(s)
  return (tostring(s):gsub("[ \t\r\n]+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function walk(node, out)
  for _, it in ipairs(node.items) do
    if is_node(it) then
      if it.cadena then walk(it, out) end
    elseif it[2] ~= nil and it[3] ~= false then
      out[#out + 1] = "|" .. normalize(it[2])
    end
  end
end

--- The cadena original of a node: "||v1|v2|...|vn||" (the SAT's XSLT:
-- "|" then "|value" per attribute present, then "||").
function M.cadena(node)
  local out = { "|" }
  walk(node, out)
  out[#out + 1] = "||"
  return table.concat(out)
end

-- ===== formatting =====

--- An amount with exactly `places` decimals.
function M.amount(d, places)
  return D(d):format(places)
end

--- A decimal with at least `min` and at most `max` places, exact: no
-- trailing zeros past `min` (Cantidad "1", "0.333333"; ValorUnitario "10.50").
function M.exact(d, min, max)
  d = D(d)
  max = max or 6
  if d.scale > max then
    local r = d:round(max)
    if r ~= d then error(string.format("%s has more than %d decimals", d:format(), max), 2) end
    d = r
  end
  local s = d:format(math.max(d.scale, min or 0))
  if s:find("%.") and (min or 0) < #s:match("%.(%d*)$") then
    local keep = min or 0
    local int, frac = s:match("^(-?%d+)%.(%d+)$")
    frac = frac:gsub("0+$", "")
    if #frac < keep then frac = frac .. string.rep("0", keep - #frac) end
    s = #frac > 0 and (int .. "." .. frac) or int
  end
  return s
end

-- ===== local time of the place of issue =====

-- Time zone by the first two digits of a Mexican postal code (the state);
-- the SAT reads Fecha as the local time of LugarExpedicion.
local ZONE_BY_PREFIX = {
  ["21"] = "America/Tijuana", ["22"] = "America/Tijuana",            -- Baja California
  ["23"] = "America/Mazatlan",                                       -- Baja California Sur
  ["80"] = "America/Mazatlan", ["81"] = "America/Mazatlan", ["82"] = "America/Mazatlan", -- Sinaloa
  ["63"] = "America/Mazatlan",                                       -- Nayarit
  ["83"] = "America/Hermosillo", ["84"] = "America/Hermosillo", ["85"] = "America/Hermosillo", -- Sonora
  ["31"] = "America/Chihuahua", ["33"] = "America/Chihuahua",        -- Chihuahua
  ["32"] = "America/Ciudad_Juarez",                                  -- Ciudad Juárez (US DST)
  ["77"] = "America/Cancun",                                         -- Quintana Roo
}

function M.zone_for(zip)
  return ZONE_BY_PREFIX[tostring(zip):sub(1, 2)] or "America/Mexico_City"
end

--- "YYYY-MM-DDTHH:MM:SS" in the local time of postal code `zip` at UTC
-- instant t (zone: an IANA name instead of the postal code's).
function M.local_time(zip, t, zone_name)
  local name = zone_name or M.zone_for(zip)
  local zone = tz.zone(name)
  if not zone then error("time zone " .. name .. " not found in " .. tz.DIR, 2) end
  local c = tz.to_local(zone, t)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d", c.year, c.month, c.day, c.hour, c.min, c.sec)
end

-- ===== the comprobante =====

local function code(name) return sat.impuesto_code(name) or name end

--- A tax node: Base, Impuesto, TipoFactor and, unless Exento, TasaOCuota
-- and Importe, every name with `suffix` ("" in a Concepto or the summary,
-- "P" and "DR" in Pagos 2.0).
function M.tax_node(name, t, places, suffix)
  suffix = suffix or ""
  local items = { { "Base" .. suffix, M.amount(t.base, places) }, { "Impuesto" .. suffix, code(t.impuesto) },
    { "TipoFactor" .. suffix, t.tipo_factor } }
  if t.tipo_factor ~= "Exento" then
    items[#items + 1] = { "TasaOCuota" .. suffix, M.amount(t.tasa, 6) }
    items[#items + 1] = { "Importe" .. suffix, M.amount(t.importe, places) }
  end
  return M.node(name, items)
end

local function concepto(c, places)
  local line = c.line
  local items = {
    { "ClaveProdServ", c.clave_prod_serv }, { "NoIdentificacion", c.no_identificacion },
    { "Cantidad", M.exact(line.quantity, 0, 6) }, { "ClaveUnidad", c.clave_unidad },
    { "Unidad", c.unidad }, { "Descripcion", c.descripcion },
    { "ValorUnitario", M.exact(line.unit_price, places, 6) },
    { "Importe", M.amount(line.importe, places) },
    { "Descuento", line.descuento and line.descuento:sign() ~= 0 and M.amount(line.descuento, places) or nil },
    { "ObjetoImp", c.objeto_imp },
  }
  if #line.traslados + #line.retenciones > 0 then
    local imp = {}
    if #line.traslados > 0 then
      local ts = {}
      for _, t in ipairs(line.traslados) do ts[#ts + 1] = M.tax_node("cfdi:Traslado", t, places) end
      imp[#imp + 1] = M.node("cfdi:Traslados", ts)
    end
    if #line.retenciones > 0 then
      local rs = {}
      for _, t in ipairs(line.retenciones) do rs[#rs + 1] = M.tax_node("cfdi:Retencion", t, places) end
      imp[#imp + 1] = M.node("cfdi:Retenciones", rs)
    end
    items[#items + 1] = M.node("cfdi:Impuestos", imp)
  end
  return M.node("cfdi:Concepto", items)
end

-- Comprobante-level summary (cfdi-domain.md §3.4): retenciones by
-- impuesto, traslados by (impuesto, factor, tasa); totals omitted when
-- there is nothing to total.
local function resumen(doc, places)
  if #doc.traslados + #doc.retenciones == 0 then return nil end
  local items = {}
  if #doc.retenciones > 0 then
    local rs = {}
    for _, g in ipairs(doc.retenciones) do
      rs[#rs + 1] = M.node("cfdi:Retencion", { { "Impuesto", code(g.impuesto) },
        { "Importe", M.amount(g.importe, places) } })
    end
    items[#items + 1] = M.node("cfdi:Retenciones", rs)
  end
  items[#items + 1] = { "TotalImpuestosRetenidos", doc.total_retenidos and M.amount(doc.total_retenidos, places) }
  if #doc.traslados > 0 then
    local ts = {}
    for _, g in ipairs(doc.traslados) do ts[#ts + 1] = M.tax_node("cfdi:Traslado", g, places) end
    items[#items + 1] = M.node("cfdi:Traslados", ts)
  end
  items[#items + 1] = { "TotalImpuestosTrasladados", doc.total_traslados and M.amount(doc.total_traslados, places) }
  return M.node("cfdi:Impuestos", items)
end

--- The comprobante tree (unsealed: Sello empty until M.seal). spec:
--   serie, folio, fecha, forma_pago, metodo_pago, condiciones, moneda,
--   tipo_cambio (text), tipo ("I" | "E" | "P"), exportacion, lugar,
--   no_certificado, certificado (base64 DER),
--   global = {periodicidad, meses, anio} (público en general),
--   relacionados = {{tipo_relacion, uuids = {...}}},
--   emisor = {rfc, nombre, regimen}, receptor = {rfc, nombre, cp, regimen, uso},
--   conceptos = {{line = gigstack.fiscal.tax line, clave_prod_serv, clave_unidad,
--     unidad, descripcion, no_identificacion, objeto_imp}},
--   doc = gigstack.fiscal.tax.document result (subtotal, descuento, total, groups),
--   pagos = a pago20:Pagos node (gigstack.fiscal.pagos), for tipo P.
-- Amounts carry the currency's decimals (sat.decimals; XXX: 0).
function M.comprobante(spec)
  local places = sat.decimals(spec.moneda) or 2
  local doc = spec.doc
  local root = { { "xmlns:cfdi", M.NS_CFDI, false }, { "xmlns:xsi", M.NS_XSI, false } }
  local loc = M.LOC_CFDI
  if spec.pagos then
    root[#root + 1] = { "xmlns:pago20", M.NS_PAGOS, false }
    loc = loc .. " " .. M.LOC_PAGOS
  end
  root[#root + 1] = { "xsi:schemaLocation", loc, false }
  local items = root
  local function add(k, v, in_cadena) items[#items + 1] = { k, v, in_cadena } end
  add("Version", "4.0"); add("Serie", spec.serie); add("Folio", spec.folio and tostring(spec.folio))
  add("Fecha", spec.fecha); add("FormaPago", spec.forma_pago)
  add("NoCertificado", spec.no_certificado or "")
  add("Certificado", spec.certificado or "", false)
  add("Sello", "", false)
  add("CondicionesDePago", spec.condiciones)
  add("SubTotal", M.amount(doc.subtotal, places))
  add("Descuento", doc.descuento and M.amount(doc.descuento, places) or nil)
  add("Moneda", spec.moneda); add("TipoCambio", spec.tipo_cambio)
  add("Total", M.amount(doc.total, places))
  add("TipoDeComprobante", spec.tipo); add("Exportacion", spec.exportacion or "01")
  add("MetodoPago", spec.metodo_pago); add("LugarExpedicion", spec.lugar)
  if spec.global then
    items[#items + 1] = M.node("cfdi:InformacionGlobal", { { "Periodicidad", spec.global.periodicidad },
      { "Meses", spec.global.meses }, { "Año", tostring(spec.global.anio) } })
  end
  for _, r in ipairs(spec.relacionados or {}) do
    local rel = { { "TipoRelacion", r.tipo_relacion } }
    for _, u in ipairs(r.uuids) do rel[#rel + 1] = M.node("cfdi:CfdiRelacionado", { { "UUID", u } }) end
    items[#items + 1] = M.node("cfdi:CfdiRelacionados", rel)
  end
  local e, r = spec.emisor, spec.receptor
  items[#items + 1] = M.node("cfdi:Emisor", { { "Rfc", e.rfc }, { "Nombre", e.nombre },
    { "RegimenFiscal", e.regimen } })
  items[#items + 1] = M.node("cfdi:Receptor", { { "Rfc", r.rfc }, { "Nombre", r.nombre },
    { "DomicilioFiscalReceptor", r.cp }, { "ResidenciaFiscal", r.residencia },
    { "NumRegIdTrib", r.num_reg_id_trib }, { "RegimenFiscalReceptor", r.regimen }, { "UsoCFDI", r.uso } })
  local cs = {}
  for _, c in ipairs(spec.conceptos) do cs[#cs + 1] = concepto(c, places) end
  items[#items + 1] = M.node("cfdi:Conceptos", cs)
  items[#items + 1] = resumen(doc, places)
  items[#items + 1] = M.node("cfdi:Complemento", { spec.pagos })
  return M.node("cfdi:Comprobante", items)
end

local function attr(node, name)
  for _, it in ipairs(node.items) do
    if not is_node(it) and it[1] == name then return it end
  end
end

local function child(node, name)
  for _, it in ipairs(node.items) do
    if is_node(it) and it.name == name then return it end
  end
end
M.attr, M.child = attr, child

--- Seal a comprobante: sign(cadena) -> base64 signature (RSA-SHA256 with
-- the issuer's CSD). Sets Sello; returns the cadena original and the Sello.
function M.seal(node, sign)
  local cadena = M.cadena(node)
  local sello, err = sign(cadena)
  if not sello then error("seal: " .. tostring(err), 2) end
  attr(node, "Sello")[2] = sello
  return cadena, sello
end

--- The TimbreFiscalDigital 1.1 node for a sealed comprobante. spec: uuid,
-- fecha (local time of the PAC), rfc_prov_certif, no_certificado_sat;
-- sign(cadena) -> base64 (the PAC's key). Appended to cfdi:Complemento,
-- outside the comprobante's cadena. Returns the TFD node and its cadena.
function M.stamp(node, spec, sign)
  local sello_cfd = attr(node, "Sello")[2]
  local tfd = M.node("tfd:TimbreFiscalDigital", {
    { "xmlns:tfd", M.NS_TFD, false }, { "xsi:schemaLocation", M.LOC_TFD, false },
    { "Version", "1.1" }, { "UUID", spec.uuid }, { "FechaTimbrado", spec.fecha },
    { "RfcProvCertif", spec.rfc_prov_certif }, { "Leyenda", spec.leyenda },
    { "SelloCFD", sello_cfd }, { "NoCertificadoSAT", spec.no_certificado_sat },
    { "SelloSAT", "", false } }, { cadena = false })
  local cadena = M.cadena(tfd)
  local sello, err = sign(cadena)
  if not sello then error("stamp: " .. tostring(err), 2) end
  attr(tfd, "SelloSAT")[2] = sello
  local comp = child(node, "cfdi:Complemento")
  comp.items[#comp.items + 1] = tfd
  return tfd, cadena
end

return M
