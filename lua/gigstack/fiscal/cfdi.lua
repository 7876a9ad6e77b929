--- Read a CFDI 4.0 you received (from invoices:files, the SAT's download
-- service, an email): parse the XML into a Lua table, rebuild its cadena
-- original (as the SAT's XSLT cadenaoriginal_4_0 does, with Pagos 2.0),
-- and check its arithmetic and its seal.
--
--   local cfdi = require "gigstack.fiscal.cfdi"
--   local doc = assert(cfdi.parse(xml_text))
--   doc.Total, doc.Emisor.Rfc, doc.Conceptos[1].Importe, doc.TimbreFiscalDigital.UUID
--   local ok, problems = cfdi.check(xml_text)   -- problems: {{rule, message}}
--
-- Attribute names stay the SAT's (doc.SubTotal, concepto.ValorUnitario) so
-- nothing is lost in translation; values stay text (exact decimals).
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"
local tax = require "gigstack.fiscal.tax"

local M = {}

local D = decimal.new

-- ===== a small XML reader: elements and attributes (text is ignored) =====

local ENT = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

local function unescape(s)
  return (s:gsub("&(#?x?)(%w+);", function(kind, v)
    if kind == "" then return ENT[v] end
    local n = tonumber(v, kind == "#x" and 16 or 10)
    return n and utf8.char(n)
  end))
end

-- What the reader passes over whole: opener, closer, name (in this
-- order: "<!--" and "<![CDATA[" before the plain "<!")
local SKIPPED = {
  { "<!--", "-->", "comment" },
  { "<?", "?>", "processing instruction" },
  { "<![CDATA[", "]]>", "CDATA" },
  { "<!", ">", "declaration" },
}

--- Parse XML text into {name, attrs = {k = v}, order = {k...}, children}.
-- Returns the root element or nil, message.
function M.parse_xml(text)
  if type(text) ~= "string" then return nil, "xml: must be a string" end
  local pos, stack, root = 1, {}, nil
  local len = #text
  while pos <= len do
    local lt = text:find("<", pos, true)
    if not lt then break end
    local skip
    for _, s in ipairs(SKIPPED) do
      if text:sub(lt, lt + #s[1] - 1) == s[1] then skip = s; break end
    end
    if skip then
      local _, e = text:find(skip[2], lt + #skip[1], true)
      if not e then return nil, "xml: unterminated " .. skip[3] end
      pos = e + 1
    elseif text:sub(lt, lt + 1) == "</" then
      local name, e = text:match("^</([%w_:%.%-]+)%s*>()", lt)
      if not name then return nil, "xml: bad end tag at byte " .. lt end
      local top = table.remove(stack)
      if not top or top.name ~= name then
        return nil, "xml: </" .. name .. "> does not close " .. (top and "<" .. top.name .. ">" or "anything")
      end
      pos = e
    else
      local name, p = text:match("^<([%w_:%.%-]+)()", lt)
      if not name then return nil, "xml: bad start tag at byte " .. lt end
      local el = { name = name, attrs = {}, order = {}, children = {} }
      while true do
        local ws, k, q, rest = text:match("^(%s*)([%w_:%.%-\128-\255]+)%s*=%s*(['\"])()", p)
        if not k then break end
        if ws == "" then return nil, "xml: attributes of <" .. name .. "> need spaces between them" end
        local close = text:find(q, rest, true)
        if not close then return nil, "xml: unterminated attribute " .. k end
        if el.attrs[k] ~= nil then return nil, "xml: attribute " .. k .. " repeated in <" .. name .. ">" end
        -- attribute-value normalisation: literal tabs and newlines read as spaces
        el.attrs[k] = unescape((text:sub(rest, close - 1):gsub("[\t\r\n]", " ")))
        el.order[#el.order + 1] = k
        p = close + 1
      end
      local selfclose, e = text:match("^%s*(/?)>()", p)
      if not e then return nil, "xml: bad tag <" .. name .. "> at byte " .. lt end
      local parent = stack[#stack]
      if parent then parent.children[#parent.children + 1] = el
      elseif root then return nil, "xml: more than one root element"
      else root = el end
      if selfclose == "" then stack[#stack + 1] = el end
      pos = e
    end
  end
  if #stack > 0 then return nil, "xml: <" .. stack[#stack].name .. "> is not closed" end
  if not root then return nil, "xml: no element" end
  return root
end

local function localname(n) return n:match(":(.+)$") or n end

local function kids(el, lname)
  local out = {}
  for _, c in ipairs(el.children) do
    if localname(c.name) == lname then out[#out + 1] = c end
  end
  return out
end

local function kid(el, lname) return kids(el, lname)[1] end

-- ===== cadena original, in the order of the SAT's XSLT =====

-- attribute order per element (cadenaoriginal_4_0.xslt, Pagos20.xslt)
local ORDER = {
  Comprobante = { "Version", "Serie", "Folio", "Fecha", "FormaPago", "NoCertificado", "CondicionesDePago",
    "SubTotal", "Descuento", "Moneda", "TipoCambio", "Total", "TipoDeComprobante", "Exportacion",
    "MetodoPago", "LugarExpedicion", "Confirmacion" },
  InformacionGlobal = { "Periodicidad", "Meses", "Año" },
  Emisor = { "Rfc", "Nombre", "RegimenFiscal", "FacAtrAdquirente" },
  Receptor = { "Rfc", "Nombre", "DomicilioFiscalReceptor", "ResidenciaFiscal", "NumRegIdTrib",
    "RegimenFiscalReceptor", "UsoCFDI" },
  Concepto = { "ClaveProdServ", "NoIdentificacion", "Cantidad", "ClaveUnidad", "Unidad", "Descripcion",
    "ValorUnitario", "Importe", "Descuento", "ObjetoImp" },
  Traslado = { "Base", "Impuesto", "TipoFactor", "TasaOCuota", "Importe" },
  Retencion = { "Base", "Impuesto", "TipoFactor", "TasaOCuota", "Importe" },
  ResumenRetencion = { "Impuesto", "Importe" },
  ACuentaTerceros = { "RfcACuentaTerceros", "NombreACuentaTerceros", "RegimenFiscalACuentaTerceros",
    "DomicilioFiscalACuentaTerceros" },
  InformacionAduanera = { "NumeroPedimento" },
  CuentaPredial = { "Numero" },
  Parte = { "ClaveProdServ", "NoIdentificacion", "Cantidad", "Unidad", "Descripcion", "ValorUnitario", "Importe" },
  Pagos = { "Version" },
  Totales = { "TotalRetencionesIVA", "TotalRetencionesISR", "TotalRetencionesIEPS", "TotalTrasladosBaseIVA16",
    "TotalTrasladosImpuestoIVA16", "TotalTrasladosBaseIVA8", "TotalTrasladosImpuestoIVA8",
    "TotalTrasladosBaseIVA0", "TotalTrasladosImpuestoIVA0", "TotalTrasladosBaseIVAExento", "MontoTotalPagos" },
  Pago = { "FechaPago", "FormaDePagoP", "MonedaP", "TipoCambioP", "Monto", "NumOperacion", "RfcEmisorCtaOrd",
    "NomBancoOrdExt", "CtaOrdenante", "RfcEmisorCtaBen", "CtaBeneficiario", "TipoCadPago", "CertPago",
    "CadPago", "SelloPago" },
  DoctoRelacionado = { "IdDocumento", "Serie", "Folio", "MonedaDR", "EquivalenciaDR", "NumParcialidad",
    "ImpSaldoAnt", "ImpPagado", "ImpSaldoInsoluto", "ObjetoImpDR" },
  RetencionDR = { "BaseDR", "ImpuestoDR", "TipoFactorDR", "TasaOCuotaDR", "ImporteDR" },
  TrasladoDR = { "BaseDR", "ImpuestoDR", "TipoFactorDR", "TasaOCuotaDR", "ImporteDR" },
  RetencionP = { "ImpuestoP", "ImporteP" },
  TrasladoP = { "BaseP", "ImpuestoP", "TipoFactorP", "TasaOCuotaP", "ImporteP" },
  TimbreFiscalDigital = { "Version", "UUID", "FechaTimbrado", "RfcProvCertif", "Leyenda", "SelloCFD",
    "NoCertificadoSAT" },
}

local function normalize(s)
  return (s:gsub("[ \t\r\n]+", " "):gsub("^ ", ""):gsub(" $", ""))
end

-- "Requerido" writes "|" even for an absent value; "Opcional" only when present
local function put(out, el, key)
  for _, k in ipairs(ORDER[key]) do
    local v = el.attrs[k]
    if v ~= nil and v ~= "" then out[#out + 1] = "|" .. normalize(v) end
  end
end

local function each(out, list, key)
  for _, el in ipairs(list) do put(out, el, key) end
end

local function pagos(out, el)
  put(out, el, "Pagos")
  for _, t in ipairs(kids(el, "Totales")) do put(out, t, "Totales") end
  for _, p in ipairs(kids(el, "Pago")) do
    put(out, p, "Pago")
    for _, d in ipairs(kids(p, "DoctoRelacionado")) do
      put(out, d, "DoctoRelacionado")
      for _, imp in ipairs(kids(d, "ImpuestosDR")) do
        for _, rs in ipairs(kids(imp, "RetencionesDR")) do each(out, kids(rs, "RetencionDR"), "RetencionDR") end
        for _, ts in ipairs(kids(imp, "TrasladosDR")) do each(out, kids(ts, "TrasladoDR"), "TrasladoDR") end
      end
    end
    for _, imp in ipairs(kids(p, "ImpuestosP")) do
      for _, rs in ipairs(kids(imp, "RetencionesP")) do each(out, kids(rs, "RetencionP"), "RetencionP") end
      for _, ts in ipairs(kids(imp, "TrasladosP")) do each(out, kids(ts, "TrasladoP"), "TrasladoP") end
    end
  end
end

local COMPLEMENTS = {
  ["http://www.sat.gob.mx/Pagos20"] = pagos,
  ["http://www.sat.gob.mx/TimbreFiscalDigital"] = function() end,   -- not part of the comprobante's cadena
}

-- namespace URI of an element's prefix, looked up on it and its ancestors
local function ns_of(el, ancestors)
  local prefix = el.name:match("^(.-):") or ""
  local key = prefix == "" and "xmlns" or "xmlns:" .. prefix
  if el.attrs[key] then return el.attrs[key] end
  for i = #ancestors, 1, -1 do
    if ancestors[i].attrs[key] then return ancestors[i].attrs[key] end
  end
end

--- The cadena original of a parsed comprobante (M.parse_xml), or nil,
-- message for a complement this module does not know.
function M.cadena(root)
  local out = { "|" }
  put(out, root, "Comprobante")
  for _, g in ipairs(kids(root, "InformacionGlobal")) do put(out, g, "InformacionGlobal") end
  for _, rel in ipairs(kids(root, "CfdiRelacionados")) do
    out[#out + 1] = "|" .. normalize(rel.attrs.TipoRelacion or "")
    for _, r in ipairs(kids(rel, "CfdiRelacionado")) do out[#out + 1] = "|" .. normalize(r.attrs.UUID or "") end
  end
  for _, e in ipairs(kids(root, "Emisor")) do put(out, e, "Emisor") end
  for _, r in ipairs(kids(root, "Receptor")) do put(out, r, "Receptor") end
  for _, cs in ipairs(kids(root, "Conceptos")) do
    for _, c in ipairs(kids(cs, "Concepto")) do
      put(out, c, "Concepto")
      for _, imp in ipairs(kids(c, "Impuestos")) do
        for _, ts in ipairs(kids(imp, "Traslados")) do each(out, kids(ts, "Traslado"), "Traslado") end
      end
      for _, imp in ipairs(kids(c, "Impuestos")) do
        for _, rs in ipairs(kids(imp, "Retenciones")) do each(out, kids(rs, "Retencion"), "Retencion") end
      end
      each(out, kids(c, "ACuentaTerceros"), "ACuentaTerceros")
      each(out, kids(c, "InformacionAduanera"), "InformacionAduanera")
      each(out, kids(c, "CuentaPredial"), "CuentaPredial")
      if #kids(c, "ComplementoConcepto") > 0 then return nil, "ComplementoConcepto is not supported" end
      for _, p in ipairs(kids(c, "Parte")) do
        put(out, p, "Parte")
        each(out, kids(p, "InformacionAduanera"), "InformacionAduanera")
      end
    end
  end
  for _, imp in ipairs(kids(root, "Impuestos")) do
    for _, rs in ipairs(kids(imp, "Retenciones")) do each(out, kids(rs, "Retencion"), "ResumenRetencion") end
    if imp.attrs.TotalImpuestosRetenidos then out[#out + 1] = "|" .. normalize(imp.attrs.TotalImpuestosRetenidos) end
    for _, ts in ipairs(kids(imp, "Traslados")) do each(out, kids(ts, "Traslado"), "Traslado") end
    if imp.attrs.TotalImpuestosTrasladados then
      out[#out + 1] = "|" .. normalize(imp.attrs.TotalImpuestosTrasladados)
    end
  end
  for _, comp in ipairs(kids(root, "Complemento")) do
    for _, el in ipairs(comp.children) do
      local f = COMPLEMENTS[ns_of(el, { root, comp }) or ""]
      if not f then return nil, "complement " .. el.name .. " is not supported" end
      f(out, el)
    end
  end
  out[#out + 1] = "||"
  return table.concat(out)
end

--- The TimbreFiscalDigital's own cadena (cadenaoriginal_TFD_1_1.xslt).
function M.tfd_cadena(tfd)
  local out = { "|" }
  put(out, tfd, "TimbreFiscalDigital")
  out[#out + 1] = "||"
  return table.concat(out)
end

-- ===== the table =====

local function copy(attrs)
  local t = {}
  for k, v in pairs(attrs) do if not k:match("^xmlns") and not k:match("^xsi:") then t[k] = v end end
  return t
end

local function taxes(imp, group, item)
  local out = {}
  for _, g in ipairs(kids(imp, group)) do
    for _, t in ipairs(kids(g, item)) do out[#out + 1] = copy(t.attrs) end
  end
  return out
end

--- Parse a CFDI 4.0 into a table: the comprobante's attributes, Emisor,
-- Receptor, InformacionGlobal, CfdiRelacionados, Conceptos (each with
-- Traslados / Retenciones), Impuestos (with Traslados / Retenciones),
-- TimbreFiscalDigital, Pagos (the parsed pago20:Pagos element), and
-- `xml` (the parsed tree). Returns the table or nil, message.
function M.parse(text)
  local root, err = M.parse_xml(text)
  if not root then return nil, err end
  if localname(root.name) ~= "Comprobante" or root.attrs.Version ~= "4.0" then
    return nil, "not a CFDI 4.0: the root is <" .. root.name .. "> Version " .. tostring(root.attrs.Version)
  end
  local doc = copy(root.attrs)
  doc.xml = root
  local function one(name) local el = kid(root, name); return el and copy(el.attrs) end
  doc.Emisor, doc.Receptor, doc.InformacionGlobal = one("Emisor"), one("Receptor"), one("InformacionGlobal")
  doc.CfdiRelacionados = {}
  for _, rel in ipairs(kids(root, "CfdiRelacionados")) do
    local r = { TipoRelacion = rel.attrs.TipoRelacion, UUIDs = {} }
    for _, u in ipairs(kids(rel, "CfdiRelacionado")) do r.UUIDs[#r.UUIDs + 1] = u.attrs.UUID end
    doc.CfdiRelacionados[#doc.CfdiRelacionados + 1] = r
  end
  doc.Conceptos = {}
  for _, cs in ipairs(kids(root, "Conceptos")) do
    for _, c in ipairs(kids(cs, "Concepto")) do
      local t = copy(c.attrs)
      local imp = kid(c, "Impuestos")
      t.Traslados = imp and taxes(imp, "Traslados", "Traslado") or {}
      t.Retenciones = imp and taxes(imp, "Retenciones", "Retencion") or {}
      doc.Conceptos[#doc.Conceptos + 1] = t
    end
  end
  local imp = kid(root, "Impuestos")
  if imp then
    doc.Impuestos = copy(imp.attrs)
    doc.Impuestos.Traslados = taxes(imp, "Traslados", "Traslado")
    doc.Impuestos.Retenciones = taxes(imp, "Retenciones", "Retencion")
  end
  local comp = kid(root, "Complemento")
  if comp then
    local tfd = kid(comp, "TimbreFiscalDigital")
    if tfd then doc.TimbreFiscalDigital = copy(tfd.attrs); doc.TimbreFiscalDigital.xml = tfd end
    doc.Pagos = kid(comp, "Pagos")
  end
  return doc
end

-- ===== checks =====

local function decimals(s) return #(s:match("%.(%d+)$") or "") end

-- SAT limits for Cantidad × ValorUnitario (Anexo 20, Importe del concepto):
-- each factor widened by half a unit of its last decimal, truncated /
-- rounded up to the Importe's decimals.
local function importe_limits(cantidad, valor, places)
  local hc = decimal.from_units(5, decimals(cantidad) + 1)
  local hv = decimal.from_units(5, decimals(valor) + 1)
  -- the SAT subtracts 10^-12 from each upper factor; rounding the exact
  -- product up gives the same limit (a product on a boundary stays on it)
  local li = (D(cantidad) - hc):mul_to(D(valor) - hv, places, "down")
  local ls = (D(cantidad) + hc):mul_to(D(valor) + hv, places, "up")
  return li, ls
end

local function pem_of(b64)
  local lines = { "-----BEGIN CERTIFICATE-----" }
  for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
  lines[#lines + 1] = "-----END CERTIFICATE-----"
  return table.concat(lines, "\n") .. "\n"
end
M.pem_of = pem_of

--- Check a CFDI's arithmetic and seals. opts.pac_certificate (PEM) also
-- verifies SelloSAT. Returns true, doc or false, problems ({rule, message}
-- each; rule the SAT's CFDI40xxx code where the reference names one --
-- CFDI40108, 40111, 40119, 40212, 40221 -- else a short name), doc.
-- The cadena follows the XSLT for schema-valid documents (a required
-- attribute left empty is not reproduced as the XSLT's bare "|").
function M.check(text, opts)
  opts = opts or {}
  local doc, err = M.parse(text)
  if not doc then return false, { { rule = "xml", message = err } } end
  local problems = {}
  local function add(rule, fmt, ...) problems[#problems + 1] = { rule = rule, message = string.format(fmt, ...) } end
  local places = sat.decimals(doc.Moneda) or 2
  local function num(v, what)
    local d = v and decimal.parse(v)
    if not d then add("format", "%s: %s is not a decimal", what, tostring(v)) end
    return d or decimal.zero
  end
  -- conceptos: Importe within Cantidad × ValorUnitario, taxes within Base × TasaOCuota
  local subtotal, descuento = decimal.zero, decimal.zero
  for i, c in ipairs(doc.Conceptos) do
    local path = "Conceptos[" .. i .. "]"
    local importe = num(c.Importe, path .. ".Importe")
    subtotal = subtotal + importe
    descuento = descuento + (c.Descuento and num(c.Descuento, path .. ".Descuento") or decimal.zero)
    if c.Cantidad and c.ValorUnitario and c.Importe then
      local li, ls = importe_limits(c.Cantidad, c.ValorUnitario, decimals(c.Importe))
      if importe < li or importe > ls then
        add("importe_limits", "%s.Importe %s is outside %s × %s (%s..%s)", path, c.Importe, c.Cantidad,
          c.ValorUnitario, li:format(), ls:format())
      end
    end
    for _, kind in ipairs{ "Traslados", "Retenciones" } do
      for j, t in ipairs(c[kind]) do
        if t.TipoFactor == "Tasa" and t.Importe and t.Base and t.TasaOCuota then
          local ok, li, ls = tax.within_limits(t.Importe, t.Base, t.TasaOCuota, decimals(t.Importe))
          if not ok then
            add("tax_limits", "%s.%s[%d].Importe %s is outside %s × %s (%s..%s)",
              path, kind, j, t.Importe, t.Base, t.TasaOCuota, li:format(), ls:format())
          end
        end
      end
    end
  end
  if doc.TipoDeComprobante ~= "P" and doc.TipoDeComprobante ~= "T" then
    if num(doc.SubTotal, "SubTotal") ~= subtotal:round(places) then
      add("CFDI40108", "SubTotal %s is not the sum of the Importes %s", doc.SubTotal, subtotal:format(places))
    end
    if (doc.Descuento and num(doc.Descuento, "Descuento") or decimal.zero) ~= descuento:round(places) then
      add("CFDI40111", "Descuento %s is not the sum of the conceptos' %s", tostring(doc.Descuento),
        descuento:format(places))
    end
  end
  -- the summary: each group the sum of its lines, totals the sum of groups
  local imp = doc.Impuestos or { Traslados = {}, Retenciones = {} }
  local tsum, rsum = {}, {}
  for _, c in ipairs(doc.Conceptos) do
    for _, t in ipairs(c.Traslados) do
      local key = t.Impuesto .. "|" .. t.TipoFactor .. "|" .. (t.TasaOCuota or "")
      local g = tsum[key] or { base = decimal.zero, importe = decimal.zero }
      tsum[key] = g
      g.base = g.base + num(t.Base, "Base")
      if t.Importe then g.importe = g.importe + num(t.Importe, "Importe") end
    end
    for _, t in ipairs(c.Retenciones) do
      rsum[t.Impuesto] = (rsum[t.Impuesto] or decimal.zero) + num(t.Importe, "Importe")
    end
  end
  local tt, tr, any_rate = decimal.zero, decimal.zero, false
  local seen = 0
  for _, g in ipairs(imp.Traslados) do
    local key = g.Impuesto .. "|" .. g.TipoFactor .. "|" .. (g.TasaOCuota or "")
    local s = tsum[key]
    seen = seen + 1
    if not s then add("traslado_summary", "Impuestos.Traslado %s has no concepto with it", key)
    else
      if num(g.Base, "Base") ~= s.base:round(places) then
        add("traslado_summary", "Impuestos.Traslado %s Base %s is not the conceptos' %s", key, g.Base,
          s.base:format(places))
      end
      if g.Importe and num(g.Importe, "Importe") ~= s.importe:round(places) then
        add("CFDI40221", "Impuestos.Traslado %s Importe %s is not the conceptos' %s", key, g.Importe,
          s.importe:format(places))
      end
    end
    if g.Importe then tt = tt + num(g.Importe, "Importe"); any_rate = true end
  end
  local groups = 0
  for _ in pairs(tsum) do groups = groups + 1 end
  if groups ~= seen then
    add("traslado_summary", "the conceptos have %d traslado groups, the summary %d", groups, seen)
  end
  for _, g in ipairs(imp.Retenciones) do
    local s = rsum[g.Impuesto]
    if not s or num(g.Importe, "Importe") ~= s:round(places) then
      add("retencion_summary", "Impuestos.Retencion %s Importe %s is not the conceptos' %s", g.Impuesto, g.Importe,
        s and s:format(places) or "0")
    end
    tr = tr + num(g.Importe, "Importe")
  end
  if imp.TotalImpuestosTrasladados and num(imp.TotalImpuestosTrasladados, "TotalImpuestosTrasladados") ~= tt then
    add("total_traslados", "TotalImpuestosTrasladados %s is not the sum %s", imp.TotalImpuestosTrasladados,
      tt:format(places))
  end
  if any_rate and not imp.TotalImpuestosTrasladados then
    add("CFDI40212", "TotalImpuestosTrasladados is missing")
  end
  if imp.TotalImpuestosRetenidos and num(imp.TotalImpuestosRetenidos, "TotalImpuestosRetenidos") ~= tr then
    add("total_retenidos", "TotalImpuestosRetenidos %s is not the sum %s", imp.TotalImpuestosRetenidos,
      tr:format(places))
  end
  local total = num(doc.SubTotal, "SubTotal") - (doc.Descuento and num(doc.Descuento, "Descuento") or decimal.zero)
    + (imp.TotalImpuestosTrasladados and num(imp.TotalImpuestosTrasladados, "T") or decimal.zero)
    - (imp.TotalImpuestosRetenidos and num(imp.TotalImpuestosRetenidos, "R") or decimal.zero)
  if num(doc.Total, "Total") ~= total then
    add("CFDI40119", "Total %s is not SubTotal − Descuento + traslados − retenidos = %s", doc.Total,
      total:format(places))
  end
  -- the seal
  local ok_core, core = pcall(require, "gigstack.core")
  local cadena, cerr = M.cadena(doc.xml)
  if not cadena then add("cadena", "%s", cerr)
  elseif not ok_core then add("sello", "gigstack.core (libcrypto) is not available to verify the seal")
  elseif not doc.Certificado or not doc.Sello then add("sello", "Sello or Certificado is missing")
  else
    local pem = pem_of(doc.Certificado)
    local info = core.x509_info(pem)
    if not info then add("certificado", "Certificado is not an X.509 certificate")
    else
      local no = info.serial_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
      if no ~= doc.NoCertificado then
        add("no_certificado", "NoCertificado %s is not the certificate's serial %s", tostring(doc.NoCertificado), no)
      end
      local good = core.rsa_sha256_verify(pem, cadena, doc.Sello)
      if not good then add("sello", "Sello does not verify over the cadena original") end
    end
  end
  local tfd = doc.TimbreFiscalDigital
  if tfd then
    if tfd.SelloCFD ~= doc.Sello then add("tfd", "SelloCFD is not the comprobante's Sello") end
    if opts.pac_certificate and ok_core then
      if not core.rsa_sha256_verify(opts.pac_certificate, M.tfd_cadena(tfd.xml), tfd.SelloSAT or "") then
        add("tfd", "SelloSAT does not verify with the given PAC certificate")
      end
    end
  end
  doc.cadena = cadena
  if #problems > 0 then return false, problems, doc end
  return true, doc
end

return M
