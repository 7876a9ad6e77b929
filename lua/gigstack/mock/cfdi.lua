--- The emulator's CFDI 4.0 XML: an invoice, egress or payment complement
-- as the SAT schemas define it, sealed with the emulator's TEST CSD and
-- stamped with its TEST "PAC" certificate (gigstack.mock.test_csd; these
-- seals prove nothing to the SAT). The figures come from gigstack.fiscal.tax
-- through gigstack.mock.amounts, the code that computed the invoice's
-- JSON totals; a difference between the two is a 500, never a document.
local amounts = require "gigstack.mock.amounts"
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local test_csd = require "gigstack.mock.test_csd"
local money = require "gigstack.fiscal.money"
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"
local tax = require "gigstack.fiscal.tax"
local rfc = require "gigstack.fiscal.rfc"
local xml = require "gigstack.fiscal.cfdi_xml"
local pagos = require "gigstack.fiscal.pagos"

local M = {}

M.RFC_PROV_CERTIF = "SAT970701NN3"
M.PAC_ZONE = "America/Mexico_City"   -- FechaTimbrado: the PAC's time (zona centro)

local function text(v)
  if type(v) == "table" and v.text then return v.text end
  return v
end

local certs = {}
local function cert_b64(which)
  if not certs[which] then
    local core = require "gigstack.core"
    local info, err = core.x509_info(test_csd[which].certificate)
    if not info then error("test " .. which .. " certificate: " .. tostring(err)) end
    certs[which] = info.der_base64
  end
  return certs[which]
end

local function signer(which)
  local core = require "gigstack.core"
  return function(cadena) return core.rsa_sha256_sign(test_csd[which].private_key, cadena) end
end

--- The tax lines and document of an income or egress invoice, recomputed
-- from its stored items by the code that priced them (amounts.line), and
-- checked against the JSON totals it was given then.
function M.figures(inv)
  local c = check.new()
  local lines = {}
  for i, it in ipairs(inv.items or {}) do
    local path = "items[" .. i .. "]"
    if it.unit_price == nil and it.total ~= nil then
      -- older-generation payments: one line total per item, no taxes
      lines[i] = tax.line{ quantity = 1, unit_price = decimal.from_units(money.cents(text(it.total)) or 0, 2),
        decimals = 2 }
    else
      lines[i] = amounts.line(c, it, path, money.cents(text(it.unit_price)))
    end
  end
  if #c.problems > 0 or #lines ~= #(inv.items or {}) then
    wire.fail(500, "internal_error", "invoice " .. inv.uuid .. ": its items no longer price: "
      .. tostring(c.problems[1] and c.problems[1].field))
  end
  local doc = tax.document{ lines = lines, currency = inv.currency }
  local places = sat.decimals(inv.currency)
  local function same(field, d)
    local want = (d or decimal.zero):format(places)
    if text(inv[field]) ~= nil and decimal.new(text(inv[field])) ~= decimal.new(want) then
      wire.fail(500, "internal_error", string.format("invoice %s: %s %s in JSON but %s in the XML",
        inv.uuid, field, tostring(text(inv[field])), want))
    end
  end
  same("subtotal", doc.subtotal); same("taxes", doc.total_traslados)
  same("withholding_taxes", doc.total_retenidos); same("total", doc.total)
  return doc
end

local function is_generic(client)
  return client and (client.tax_id == rfc.GENERIC or client.tax_id == rfc.GENERIC_FOREIGN)
end

local function parties(team, inv, lugar)
  if not team.tax_id or not team.tax_system or not team.legal_name then
    wire.fail(409, "business_rule_violation", "team " .. tostring(team.id)
      .. " needs tax_id, legal_name and tax_system to issue a CFDI (Emisor)")
  end
  local client = inv.client or {}
  local receptor
  if is_generic(client) then
    -- público en general: the place of issue stands for the receptor's address
    receptor = { rfc = client.tax_id, nombre = "PUBLICO EN GENERAL", cp = lugar, regimen = "616",
      uso = inv.invoice_type == "P" and "CP01" or "S01" }
  else
    local zip = type(client.address) == "table" and client.address.zip
    if not zip or not client.tax_system then
      wire.fail(409, "business_rule_violation", "client " .. tostring(client.id)
        .. " needs address.zip and tax_system for the CFDI (DomicilioFiscalReceptor, RegimenFiscalReceptor)")
    end
    receptor = { rfc = client.tax_id, nombre = client.legal_name or client.name, cp = zip,
      regimen = client.tax_system, uso = inv.use }
  end
  return { rfc = team.tax_id, nombre = team.legal_name, regimen = team.tax_system }, receptor
end

local function conceptos(inv, doc)
  local out = {}
  for i, it in ipairs(inv.items or {}) do
    local line = doc.lines[i]
    out[i] = { line = line, clave_prod_serv = it.product_key or "01010101", clave_unidad = it.unit_key or "E48",
      unidad = it.unit_name, descripcion = it.description or it.name or "Venta",
      no_identificacion = it.sku and tostring(it.sku) or nil,
      objeto_imp = (#line.traslados + #line.retenciones > 0) and "02" or "01" }
  end
  return out
end

-- the emulator's rates are numbers or text; TipoCambio takes up to 6 decimals
local function tipo_cambio(inv)
  if inv.currency == "MXN" or inv.currency == "XXX" then return nil end
  local rate = inv.exchange_rate
  if rate == nil then rate = amounts.RATES[inv.currency] end
  return xml.exact(decimal.new(text(rate)):round(6), 0, 6)
end

local function complement_spec(ctx, inv, spec)
  local parent = ctx.store:get(inv.team, "invoices", tostring(inv.related_invoice))
  if not parent then
    wire.fail(409, "business_rule_violation", "complement " .. inv.uuid .. ": related invoice missing")
  end
  local p = inv.payment
  local pdoc = M.figures(parent)
  local rate = tipo_cambio(parent)
  local node, summary = pagos.build{
    fecha_pago = spec.fecha, forma = p.payment_form, moneda = p.currency or parent.currency,
    tipo_cambio = rate, monto = decimal.new(text(p.amount)),
    doctos = { { uuid = parent.uuid, serie = parent.series, folio = parent.folio_number,
      moneda = parent.currency, parcialidad = p.installment, saldo_ant = decimal.new(text(p.previous_balance)),
      pagado = decimal.new(text(p.paid)), insoluto = decimal.new(text(p.remaining_balance)), doc = pdoc } } }
  spec.pagos = node
  spec.moneda = "XXX"
  spec.doc = { subtotal = decimal.zero, total = decimal.zero, traslados = {}, retenciones = {} }
  spec.conceptos = { { line = { quantity = decimal.new(1), unit_price = decimal.zero, importe = decimal.zero,
    traslados = {}, retenciones = {} }, clave_prod_serv = "84111506", clave_unidad = "ACT",
    descripcion = "Pago", objeto_imp = "01" } }
  return summary
end

--- The sealed and stamped CFDI of an invoice, egress or complement.
-- Returns xml text, and {cadena, sello, tfd_cadena, doc, pagos} for checks.
function M.build(ctx, inv)
  local team = ctx.store.teams[inv.team] or {}
  local lugar = type(team.address) == "table" and team.address.zip
  if not lugar or not tostring(lugar):match("^%d%d%d%d%d$") or lugar == "00000" then
    wire.fail(409, "business_rule_violation", "team " .. tostring(team.id)
      .. " has no fiscal address zip: a CFDI needs LugarExpedicion")
  end
  local fecha = xml.local_time(lugar, inv.created_at)
  local emisor, receptor = parties(team, inv, lugar)
  local spec = { serie = inv.series, folio = inv.folio_number, fecha = fecha, tipo = inv.invoice_type,
    lugar = lugar, emisor = emisor, receptor = receptor, moneda = inv.currency,
    no_certificado = test_csd.csd.no_certificado, certificado = cert_b64("csd") }
  local extra = {}
  if inv.invoice_type == "P" then
    extra.pagos = complement_spec(ctx, inv, spec)
  else
    spec.doc = M.figures(inv)
    spec.conceptos = conceptos(inv, spec.doc)
    spec.forma_pago = inv.payment_form
    spec.metodo_pago = inv.payment_method or "PUE"
    spec.tipo_cambio = tipo_cambio(inv)
    if is_generic(inv.client) and inv.client.tax_id == rfc.GENERIC then
      local g = type(inv.global) == "table" and inv.global or {}
      spec.global = { periodicidad = g.periodicity or "04", meses = g.months or fecha:sub(6, 7),
        anio = g.year or tonumber(fecha:sub(1, 4)) }
    end
    local rel = {}
    for _, r in ipairs(type(inv.related_documents) == "table" and inv.related_documents or {}) do
      local kind = r.relation or "01"
      local group
      for _, g in ipairs(rel) do if g.tipo_relacion == kind then group = g end end
      if not group then group = { tipo_relacion = kind, uuids = {} }; rel[#rel + 1] = group end
      group.uuids[#group.uuids + 1] = tostring(r.uuid)
    end
    spec.relacionados = rel
  end
  local node = xml.comprobante(spec)
  local cadena, sello = xml.seal(node, signer("csd"))
  local _, tfd_cadena = xml.stamp(node, { uuid = inv.uuid, rfc_prov_certif = M.RFC_PROV_CERTIF,
    fecha = xml.local_time(nil, inv.created_at, M.PAC_ZONE), no_certificado_sat = test_csd.pac.no_certificado },
    signer("pac"))
  extra.cadena, extra.sello, extra.tfd_cadena, extra.doc = cadena, sello, tfd_cadena, spec.doc
  return xml.serialize(node), extra
end

return M
