-- The emulator's CFDI 4.0 XML, fetched through the SDK (invoices:files):
-- valid against the SAT's XSDs (xmllint), cadena original equal to the
-- SAT's XSLT output byte for byte (xsltproc), Sello and SelloSAT verified
-- by openssl with the certificates the documents carry, JSON totals equal
-- to the XML's. The seals are the emulator's TEST certificates.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local decimal = require "gigstack.fiscal.decimal"
local core = require "gigstack.core"
local support = require "support"
local test_csd = require "gigstack.mock.test_csd"
local mock_cfdi = require "gigstack.mock.cfdi"
local fiscal_cfdi = require "gigstack.fiscal.cfdi"

local check = gigstack.check
local D = decimal.new

-- the SAT's XSDs and XSLTs (public files; README.md there), copied from shared/reference
-- (absolute: the TFD wrapper stylesheet in a temporary directory imports from it)
local XSD = os.getenv("SAT_XSD_DIR")
if not XSD then
  local p = assert(io.popen("pwd"))
  XSD = p:read("l") .. "/spec/fixtures/sat-xsd"
  p:close()
end

local function sh(cmd)
  local code, out, err = support.sh(cmd)
  return code, out, err
end

local tmpdir
local function tmp(name)
  if not tmpdir then
    tmpdir = os.tmpname()
    os.remove(tmpdir)
    assert(os.execute("mkdir -p " .. tmpdir))
  end
  return tmpdir .. "/" .. name
end

local write = support.write_file

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- attribute `name` of the first element `elem` (qualified name) in xml
local function attr(xml, elem, name)
  local tag = xml:match("<" .. elem:gsub("%-", "%%-") .. "%s[^>]*>")
  if not tag then return nil end
  return tag:match("%s" .. name .. '="([^"]*)"')
end

local function client_body(rfc, extra)
  local c = { legal_name = "COMERCIALIZADORA SA", tax_id = rfc or "CAMA911215CJ0", tax_system = "612",
    email = "compras@ejemplo.mx", address = { zip = "03100" }, use = "G03" }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function item(price, taxes, extra)
  local it = { description = "Servicio de consultoría", quantity = 1, unit_price = price,
    product_key = "81111500", unit_key = "E48", taxes = taxes or { { type = "IVA", rate = 0.16 } } }
  for k, v in pairs(extra or {}) do it[k] = v end
  return it
end

local function fetch_xml(gs, uuid)
  local files = check(gs.invoices:files(uuid))
  local res = assert(http.request{ url = files.xml })
  assert.equals(200, res.status, res.body)
  return res.body
end

describe("emulator CFDI XML", function()
  teardown(function()
    if tmpdir then assert(os.execute("rm -rf " .. q(tmpdir))) end
  end)

  it("the complement of a registered ppd_invoice_and_complement payment never carries form 99", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      -- paid at once with 99 (por definir): the complement would have no real form
      local _, err = gs.payments:register({ client = { id = c.id }, items = { item(100) },
        automation_type = "ppd_invoice_and_complement", payment_form = "99" }, { validate = false })
      assert.is_table(err)
      assert.equals(400, err.status)
      assert.equals("payment_form", err.details[1].field)
      assert.equals(0, check(gs.complements:list()).total_results)
      -- with how the money arrived (03): PPD invoice with 99, complement with 03
      -- (validate = false: the SDK's own rule asks 99 of every PPD payment body)
      local p = check(gs.payments:register({ client = { id = c.id }, items = { item(100) },
        automation_type = "ppd_invoice_and_complement", payment_form = "03" }, { validate = false }))
      local inv = check(gs.invoices:get(p.invoice_id))
      assert.same({ "PPD", "99" }, { inv.payment_method, inv.payment_form })
      local rep = check(gs.complements:get(p.complements[1]))
      assert.equals("03", rep.payment.payment_form)
      local xml = fetch_xml(gs, rep.uuid)
      assert.equals("03", attr(xml, "pago20:Pago", "FormaDePagoP"))
    end)
  end)

  -- Each document: xmllint against the SAT XSDs; the project's cadena (the
  -- emulator's own, rebuilt from its store) equals xsltproc's byte for byte;
  -- Sello verifies with the certificate in Certificado, SelloSAT with the
  -- PAC certificate over the TFD's own XSLT cadena; returns the served XML.
  local function verify_document(gs, server, name, uuid)
    local xml = fetch_xml(gs, uuid)
    local path = write(tmp(name .. ".xml"), xml)
    local code, out, err = sh("cd " .. q(XSD) .. " && xmllint --noout --schema all.xsd " .. q(path))
    assert.equals(0, code, name .. ": " .. err .. out)
    assert.matches("validates", err)
    -- the project's cadena and XML for the same document
    local ctx = { store = server.emulator.store, team = "team_mock" }
    local inv = require("gigstack.mock.invoices").find(ctx, uuid)
    local built, extra = mock_cfdi.build(ctx, inv)
    assert.equals(xml, built, name .. ": served XML differs from a rebuild (RSA PKCS#1 v1.5 is deterministic)")
    local xslt_code, cadena = sh("xsltproc " .. q(XSD .. "/cfd/4/cadenaoriginal_4_0/cadenaoriginal_4_0.xslt")
      .. " " .. q(path))
    assert.equals(0, xslt_code)
    assert.equals(cadena, extra.cadena, name .. ": cadena original differs from the SAT XSLT's")
    -- Sello: RSA-SHA256 over the XSLT's cadena, with the key of the certificate in the XML
    local der = assert(core.base64_decode(assert(attr(xml, "cfdi:Comprobante", "Certificado"))))
    local cert = write(tmp(name .. ".cer"), der)
    local pub = tmp(name .. ".pub.pem")
    assert.equals(0, (sh("openssl x509 -inform DER -in " .. q(cert) .. " -pubkey -noout > " .. q(pub))))
    local _, serial = sh("openssl x509 -inform DER -in " .. q(cert) .. " -noout -serial")
    -- NoCertificado: the serial's bytes read as ASCII digits (the SAT's convention)
    local hex = assert(serial:match("serial=(%x+)"))
    assert.equals(hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end),
      attr(xml, "cfdi:Comprobante", "NoCertificado"))
    local sello = assert(attr(xml, "cfdi:Comprobante", "Sello"))
    write(tmp(name .. ".sig"), assert(core.base64_decode(sello)))
    write(tmp(name .. ".cadena"), cadena)
    local vcode, vout = sh("openssl dgst -sha256 -verify " .. q(pub) .. " -signature " .. q(tmp(name .. ".sig"))
      .. " " .. q(tmp(name .. ".cadena")))
    assert.equals(0, vcode, name .. ": " .. vout)
    assert.matches("Verified OK", vout)
    -- the TFD: its cadena by the SAT's TFD XSLT (entered at the TFD inside the document)
    local wrapper = write(tmp("tfd.xslt"), [[<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:tfd="http://www.sat.gob.mx/TimbreFiscalDigital">
  <xsl:import href="]] .. XSD .. [[/cfd/TimbreFiscalDigital/cadenaoriginal_TFD_1_1.xslt"/>
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="/">|<xsl:apply-templates select="//tfd:TimbreFiscalDigital"/>||</xsl:template>
</xsl:stylesheet>
]])
    local _, tfd_cadena = sh("xsltproc " .. q(wrapper) .. " " .. q(path))
    assert.equals(tfd_cadena, extra.tfd_cadena, name .. ": TFD cadena differs from the SAT XSLT's")
    assert.equals(sello, attr(xml, "tfd:TimbreFiscalDigital", "SelloCFD"))
    assert.equals(test_csd.pac.no_certificado, attr(xml, "tfd:TimbreFiscalDigital", "NoCertificadoSAT"))
    local pac = write(tmp("pac.crt"), test_csd.pac.certificate)
    write(tmp(name .. ".tfd.sig"), assert(core.base64_decode(attr(xml, "tfd:TimbreFiscalDigital", "SelloSAT"))))
    write(tmp(name .. ".tfd.cadena"), tfd_cadena)
    local pcode, pout = sh("openssl x509 -in " .. q(pac) .. " -pubkey -noout > " .. q(tmp("pac.pub"))
      .. " && openssl dgst -sha256 -verify " .. q(tmp("pac.pub")) .. " -signature " .. q(tmp(name .. ".tfd.sig"))
      .. " " .. q(tmp(name .. ".tfd.cadena")))
    assert.equals(0, pcode, name .. ": " .. pout)
    -- gigstack.fiscal.cfdi reads it back: same cadena from the parsed XML, arithmetic and seals hold
    local ok, doc = fiscal_cfdi.check(xml, { pac_certificate = test_csd.pac.certificate })
    assert.is_true(ok, name .. ": " .. (not ok and doc[1] and doc[1].rule .. " " .. doc[1].message or ""))
    assert.equals(cadena, doc.cadena, name .. ": parsed cadena differs from the SAT XSLT's")
    assert.equals(uuid, doc.TimbreFiscalDigital.UUID)
    -- and the in-process verifier agrees with openssl
    assert.is_true(core.rsa_sha256_verify(test_csd.csd.certificate, cadena, sello))
    assert.is_false(core.rsa_sha256_verify(test_csd.csd.certificate, cadena .. " ", sello))
    return xml
  end

  -- JSON figures of an income/egress invoice equal the XML's
  local function same_totals(name, inv, xml)
    local function eq(json_v, xml_v, what)
      assert.equals(D(json_v or 0), D(xml_v or "0"), name .. ": " .. what .. " JSON "
        .. tostring(json_v) .. " XML " .. tostring(xml_v))
    end
    eq(inv.subtotal, attr(xml, "cfdi:Comprobante", "SubTotal"), "SubTotal")
    eq(inv.total, attr(xml, "cfdi:Comprobante", "Total"), "Total")
    eq(inv.taxes, attr(xml, "cfdi:Impuestos", "TotalImpuestosTrasladados"), "TotalImpuestosTrasladados")
    eq(inv.withholding_taxes, attr(xml, "cfdi:Impuestos", "TotalImpuestosRetenidos"), "TotalImpuestosRetenidos")
    -- CFDI40119: Total = SubTotal - Descuento + traslados - retenidos, from the XML alone
    local t = D(attr(xml, "cfdi:Comprobante", "SubTotal")) - D(attr(xml, "cfdi:Comprobante", "Descuento") or "0")
      + D(attr(xml, "cfdi:Impuestos", "TotalImpuestosTrasladados") or "0")
      - D(attr(xml, "cfdi:Impuestos", "TotalImpuestosRetenidos") or "0")
    assert.equals(D(attr(xml, "cfdi:Comprobante", "Total")), t, name .. ": CFDI40119")
  end

  it("generates 19 documents of every kind, each schema-valid, with the XSLT's cadena, verified seals, JSON = XML",
    function()
    support.with_mock(function(gs, server)
      local docs = {}
      local c = check(gs.clients:create(client_body()))                     -- persona física, 612
      local pm = check(gs.clients:create(client_body("EKU9003173C9", { legal_name = "ESCUELA KEMPER URGATE",
        tax_system = "601", email = "pm@ejemplo.mx", address = { zip = "26015" } })))     -- persona moral
      local generic = check(gs.clients:create{ legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000",
        tax_system = "616", use = "S01", email = "mostrador@ejemplo.mx", address = { zip = "06600" } })
      local function income(name, body, opts)
        body.payment_form = body.payment_form or "03"
        local inv = check(gs.invoices:create(body, opts))
        docs[#docs + 1] = { name = name, uuid = inv.uuid, json = inv }
        return inv
      end

      -- 1 PUE, two lines, 16 % IVA, a fractional quantity (2.5 × 99.90 = 249.75)
      -- (a description with markup characters and runs of spaces: escaped in the XML,
      -- collapsed in the cadena as XPath normalize-space does)
      income("pue", { client = { id = c.id }, items = { item(1000, nil, { quantity = 3,
        description = 'Café "A&B" <1>  doble   espacio ' }),
        item(99.90, nil, { quantity = 2.5 }) } })
      -- 2 PUE with a line discount: Importe 300, Descuento 10, Base 290, IVA 46.40
      local disc = income("discount", { client = { id = c.id },
        items = { item(100, nil, { quantity = 3, discount = 10 }) } })
      assert.equals(336.40, disc.total)     -- 300 - 10 + 46.40
      -- 3 PPD (99), whose balance two complements pay off below
      local ppd = income("ppd", { client = { id = pm.id }, payment_method = "PPD", payment_form = "99",
        items = { item(1000) } })
      -- 4 all-exento: no TotalImpuestosTrasladados, an Exento summary
      local ex = income("exento", { client = { id = c.id },
        items = { item(500, { { type = "IVA", factor = "Exento" } }) } })
      -- 5 IVA tasa 0
      income("tasa0", { client = { id = c.id }, items = { item(250, { { type = "IVA", rate = 0 } }) } })
      -- 6 IEPS tasa 8 % then IVA on price + IEPS (LIVA art. 18)
      income("ieps_tasa", { client = { id = c.id }, items = { item(100, { { type = "IEPS", rate = 0.08 },
        { type = "IVA", rate = 0.16 } }, { product_key = "50202306", unit_key = "H87" }) } })
      -- 7 IEPS cuota per litre
      income("ieps_cuota", { client = { id = c.id }, items = { item(20, { { type = "IEPS", factor = "Cuota",
        rate = 6.4555 }, { type = "IVA", rate = 0.16 } }, { quantity = 10, product_key = "15101514",
        unit_key = "LTR" }) } })
      -- 8 retentions to a persona moral: IVA 2/3 and ISR 10 %
      income("retentions", { client = { id = pm.id }, use = "G03", items = { item(10000, {
        { type = "IVA", rate = 0.16 }, { type = "IVA", rate = 0.106667, withholding = true },
        { type = "ISR", rate = 0.10, withholding = true } }) } })
      -- 9 tax-included price: 116 with IVA -> ValorUnitario 100.000000
      income("tax_included", { client = { id = c.id }, items = { item(116, { { type = "IVA", rate = 0.16,
        inclusive = true } }, { quantity = 2 }) } })
      -- 10 USD with TipoCambio
      income("usd", { client = { id = c.id }, currency = "USD", exchange_rate = 17.25, items = { item(250) } })
      -- 11 público en general: 616 / S01 by default, InformacionGlobal
      local glob = income("global", { client = { id = generic.id }, payment_form = "01", items = { item(800, nil,
        { product_key = "01010101", unit_key = "ACT", description = "Venta" }) } })
      assert.equals("S01", glob.use)
      -- 12 egress relating the discount invoice
      local eg = check(gs.egress:create{ client = { id = c.id }, payment_form = "03", items = { item(50) },
        related_documents = { { uuid = disc.uuid, relation = "01" } } })
      docs[#docs + 1] = { name = "egress", uuid = eg.uuid, json = eg }
      -- 13, 14 two complements on the PPD invoice (1160): 400 then 760
      local r1 = check(gs.complements:create{ invoice_id = ppd.uuid, amount = 400, payment_form = "03" })
      local r2 = check(gs.complements:create{ invoice_id = ppd.uuid, amount = 760, payment_form = "04" })
      docs[#docs + 1] = { name = "rep1", uuid = r1.uuid, json = r1, rep = true }
      docs[#docs + 1] = { name = "rep2", uuid = r2.uuid, json = r2, rep = true }
      -- 15 the automatic complement of ppd_invoice_and_complement, with a retention
      local p = check(gs.payments:request{ client = { id = pm.id }, items = { item(500, {
        { type = "IVA", rate = 0.16 }, { type = "ISR", rate = 0.10, withholding = true } }) },
        automation_type = "ppd_invoice_and_complement", payment_form = "99" })
      check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
      local auto = check(gs.complements:list{ invoice_id = p.invoice_id }).data[1]
      docs[#docs + 1] = { name = "rep_auto", uuid = auto.uuid, json = auto, rep = true }
      docs[#docs + 1] = { name = "ppd_auto", uuid = p.invoice_id, json = check(gs.invoices:get(p.invoice_id)) }
      -- 16 a USD PPD invoice paid by one complement (TipoCambioP, Totales in MXN)
      local usd_ppd = income("usd_ppd", { client = { id = c.id }, currency = "USD", exchange_rate = 17.25,
        payment_method = "PPD", payment_form = "99", items = { item(100) } })
      local r3 = check(gs.complements:create{ invoice_id = usd_ppd.uuid, amount = 116, payment_form = "03" })
      docs[#docs + 1] = { name = "rep_usd", uuid = r3.uuid, json = r3, rep = true }

      -- 17 an invoice from an older-generation payment (items with a line `total`, no taxes)
      local legacy = check(gs.payments:create{ clientId = c.id, items = { { name = "Plan anual", total = 1500 } },
        paid = true, paymentMethod = "03", automaticInvoice = true })
      docs[#docs + 1] = { name = "legacy", uuid = legacy.invoices[1],
        json = check(gs.invoices:get(legacy.invoices[1])) }

      assert.is_true(#docs >= 10)
      local xmls = {}
      for _, d in ipairs(docs) do
        local xml = verify_document(gs, server, d.name, d.uuid)
        xmls[d.name] = xml
        if d.rep then
          local pay = d.json.payment
          assert.equals(D(pay.amount), D(attr(xml, "pago20:Pago", "Monto")), d.name)
          assert.equals(D(pay.previous_balance), D(attr(xml, "pago20:DoctoRelacionado", "ImpSaldoAnt")), d.name)
          assert.equals(D(pay.paid), D(attr(xml, "pago20:DoctoRelacionado", "ImpPagado")), d.name)
          assert.equals(D(pay.remaining_balance), D(attr(xml, "pago20:DoctoRelacionado", "ImpSaldoInsoluto")), d.name)
          assert.equals(tostring(pay.installment), attr(xml, "pago20:DoctoRelacionado", "NumParcialidad"), d.name)
          assert.equals(pay.payment_form, attr(xml, "pago20:Pago", "FormaDePagoP"))
          assert.not_equals("99", attr(xml, "pago20:Pago", "FormaDePagoP"))
          -- tipo P: no MetodoPago / FormaPago, one concept 84111506 / ACT / Pago / 0 / 0 / 01
          assert.is_nil(attr(xml, "cfdi:Comprobante", "MetodoPago"))
          assert.is_nil(attr(xml, "cfdi:Comprobante", "FormaPago"))
          assert.same({ "84111506", "ACT", "Pago", "0", "0", "01", "XXX", "CP01" },
            { attr(xml, "cfdi:Concepto", "ClaveProdServ"), attr(xml, "cfdi:Concepto", "ClaveUnidad"),
              attr(xml, "cfdi:Concepto", "Descripcion"), attr(xml, "cfdi:Concepto", "ValorUnitario"),
              attr(xml, "cfdi:Concepto", "Importe"), attr(xml, "cfdi:Concepto", "ObjetoImp"),
              attr(xml, "cfdi:Comprobante", "Moneda"), attr(xml, "cfdi:Receptor", "UsoCFDI") })
        else
          same_totals(d.name, d.json, xml)
        end
      end

      -- the figures each case is about, derived by hand
      local x = xmls
      -- mock issuer RFC with a valid check digit; LugarExpedicion the team's zip
      assert.equals("MMA010101AB9", attr(x.pue, "cfdi:Emisor", "Rfc"))
      assert.equals("06600", attr(x.pue, "cfdi:Comprobante", "LugarExpedicion"))
      -- 2.5 × 99.90 = 249.75; Cantidad exact
      assert.truthy(x.pue:find('Cantidad="2.5" ClaveUnidad="E48" Descripcion="Servicio de consultoría" '
        .. 'ValorUnitario="99.90" Importe="249.75"', 1, true))
      assert.equals("10.00", attr(x.discount, "cfdi:Comprobante", "Descuento"))
      assert.equals("10.00", attr(x.discount, "cfdi:Concepto", "Descuento"))
      assert.is_nil(attr(x.pue, "cfdi:Impuestos", "TotalImpuestosRetenidos"))
      assert.is_nil(attr(x.exento, "cfdi:Impuestos", "TotalImpuestosTrasladados"))
      assert.truthy(x.exento:find('<cfdi:Traslado Base="500.00" Impuesto="002" TipoFactor="Exento"/>', 1, true))
      assert.equals(D(0), D(ex.taxes))
      assert.truthy(x.tasa0:find('TasaOCuota="0.000000" Importe="0.00"', 1, true))
      -- IEPS 8 % of 100 = 8; IVA 16 % of 108 = 17.28; total 125.28
      assert.equals("125.28", attr(x.ieps_tasa, "cfdi:Comprobante", "Total"))
      assert.equals("PPD", attr(x.ppd, "cfdi:Comprobante", "MetodoPago"))
      assert.equals("99", attr(x.ppd, "cfdi:Comprobante", "FormaPago"))
      -- IVA ret 10000 × 0.106667 = 1066.67; ISR 1000.00; retenidos 2066.67
      assert.equals("2066.67", attr(x.retentions, "cfdi:Impuestos", "TotalImpuestosRetenidos"))
      -- 116 IVA included: ValorUnitario 100, Importe 2 × 100 = 200 = SubTotal
      assert.equals("100.00", attr(x.tax_included, "cfdi:Concepto", "ValorUnitario"))
      assert.equals("200.00", attr(x.tax_included, "cfdi:Comprobante", "SubTotal"))
      assert.equals("17.25", attr(x.usd, "cfdi:Comprobante", "TipoCambio"))
      assert.equals("USD", attr(x.usd, "cfdi:Comprobante", "Moneda"))
      assert.is_nil(attr(x.pue, "cfdi:Comprobante", "TipoCambio"))
      assert.same({ "XAXX010101000", "PUBLICO EN GENERAL", "616", "S01", "06600" },
        { attr(x.global, "cfdi:Receptor", "Rfc"), attr(x.global, "cfdi:Receptor", "Nombre"),
          attr(x.global, "cfdi:Receptor", "RegimenFiscalReceptor"), attr(x.global, "cfdi:Receptor", "UsoCFDI"),
          attr(x.global, "cfdi:Receptor", "DomicilioFiscalReceptor") })
      assert.equals("04", attr(x.global, "cfdi:InformacionGlobal", "Periodicidad"))
      assert.equals(attr(x.global, "cfdi:Comprobante", "Fecha"):sub(6, 7),
        attr(x.global, "cfdi:InformacionGlobal", "Meses"))
      assert.same({ "Plan anual", "1500.00", "01", "1500.00" }, { attr(x.legacy, "cfdi:Concepto", "Descripcion"),
        attr(x.legacy, "cfdi:Concepto", "Importe"), attr(x.legacy, "cfdi:Concepto", "ObjetoImp"),
        attr(x.legacy, "cfdi:Comprobante", "Total") })
      assert.is_nil(x.legacy:find("<cfdi:Impuestos", 1, true))
      assert.equals("E", attr(x.egress, "cfdi:Comprobante", "TipoDeComprobante"))
      assert.equals(disc.uuid, attr(x.egress, "cfdi:CfdiRelacionado", "UUID"))
      -- complements on 1160: 400 pays 400/1160 of base 1000 = 344.83, IVA 55.17
      assert.same({ "1", "1160.00", "400.00", "760.00" }, { attr(x.rep1, "pago20:DoctoRelacionado", "NumParcialidad"),
        attr(x.rep1, "pago20:DoctoRelacionado", "ImpSaldoAnt"), attr(x.rep1, "pago20:DoctoRelacionado", "ImpPagado"),
        attr(x.rep1, "pago20:DoctoRelacionado", "ImpSaldoInsoluto") })
      assert.same({ "344.83", "55.17" }, { attr(x.rep1, "pago20:TrasladoDR", "BaseDR"),
        attr(x.rep1, "pago20:TrasladoDR", "ImporteDR") })
      assert.same({ "2", "760.00", "0.00", "04" }, { attr(x.rep2, "pago20:DoctoRelacionado", "NumParcialidad"),
        attr(x.rep2, "pago20:DoctoRelacionado", "ImpSaldoAnt"),
        attr(x.rep2, "pago20:DoctoRelacionado", "ImpSaldoInsoluto"),
        attr(x.rep2, "pago20:Pago", "FormaDePagoP") })
      -- automatic complement of 500 + 80 - 50 = 530: ISR retained 50 in DR, P and Totales
      assert.same({ "50.00", "50.00", "50.00", "530.00" }, { attr(x.rep_auto, "pago20:RetencionDR", "ImporteDR"),
        attr(x.rep_auto, "pago20:RetencionP", "ImporteP"), attr(x.rep_auto, "pago20:Totales", "TotalRetencionesISR"),
        attr(x.rep_auto, "pago20:Totales", "MontoTotalPagos") })
      -- USD 116 at 17.25: MontoTotalPagos 2001.00, base 100 × 17.25 = 1725.00, IVA 276.00
      assert.same({ "USD", "17.25", "2001.00", "1725.00", "276.00" }, { attr(x.rep_usd, "pago20:Pago", "MonedaP"),
        attr(x.rep_usd, "pago20:Pago", "TipoCambioP"), attr(x.rep_usd, "pago20:Totales", "MontoTotalPagos"),
        attr(x.rep_usd, "pago20:Totales", "TotalTrasladosBaseIVA16"),
        attr(x.rep_usd, "pago20:Totales", "TotalTrasladosImpuestoIVA16") })
    end)
  end)

  it("Fecha is the local time of LugarExpedicion; FechaTimbrado the PAC's (zona centro)", function()
    local xml_mod = require "gigstack.fiscal.cfdi_xml"
    local tz = require "gigstack.fiscal.tz"
    -- 2026-01-15 18:30:00 UTC: Mexico City UTC-6 (no DST since 2022) 12:30, Tijuana PST
    -- UTC-8 10:30, Cancún UTC-5 13:30; 2026-07-15 18:30 UTC: Tijuana PDT UTC-7 11:30
    local jan = tz.days(2026, 1, 15) * 86400 + 18 * 3600 + 30 * 60
    local jul = tz.days(2026, 7, 15) * 86400 + 18 * 3600 + 30 * 60
    assert.equals("2026-01-15T12:30:00", xml_mod.local_time("06600", jan))
    assert.equals("2026-01-15T10:30:00", xml_mod.local_time("22000", jan))
    assert.equals("2026-01-15T13:30:00", xml_mod.local_time("77500", jan))
    assert.equals("2026-07-15T11:30:00", xml_mod.local_time("22000", jul))
    support.with_mock(function(gs, server)
      server.emulator.store.clock = function() return jan end
      server.emulator.store.teams.team_mock.address = { zip = "22000" }
      local c = check(gs.clients:create(client_body()))
      local inv = check(gs.invoices:create{ client = { id = c.id }, payment_form = "03", items = { item(100) } })
      local xml = verify_document(gs, server, "tijuana", inv.uuid)
      assert.equals("22000", attr(xml, "cfdi:Comprobante", "LugarExpedicion"))
      assert.equals("2026-01-15T10:30:00", attr(xml, "cfdi:Comprobante", "Fecha"))
      assert.equals("2026-01-15T12:30:00", attr(xml, "tfd:TimbreFiscalDigital", "FechaTimbrado"))
    end)
  end)

  it("refuses a Cantidad past 6 decimals and a team without a fiscal zip (no 00000 LugarExpedicion)", function()
    support.with_mock(function(gs, server)
      local c = check(gs.clients:create(client_body()))
      -- 1/3 reads as 0.333333333333333: 15 decimals, the XSD allows 6
      local _, err = gs.invoices:create({ client = { id = c.id }, payment_form = "03",
        items = { item(100, nil, { quantity = 1 / 3 }) } }, { validate = false })
      assert.is_table(err, "a 15-decimal quantity was accepted")
      assert.equals(400, err.status)
      assert.equals("items[1].quantity", err.details[1].field)
      assert.matches("6 decimals", err.details[1].message)
      -- six decimals are fine: 0.333333 × 300 = 99.9999 -> Importe 100.00
      local ok = check(gs.invoices:create{ client = { id = c.id }, payment_form = "03",
        items = { item(300, nil, { quantity = 0.333333 }) } })
      local xml = verify_document(gs, server, "sixdec", ok.uuid)
      assert.equals("0.333333", attr(xml, "cfdi:Concepto", "Cantidad"))
      assert.equals("100.00", attr(xml, "cfdi:Concepto", "Importe"))
      server.emulator.store.teams.team_mock.address = {}
      local files = check(gs.invoices:files(ok.uuid))
      local res = assert(http.request{ url = files.xml })
      assert.equals(409, res.status)
      assert.matches("LugarExpedicion", res.body)
      assert.is_nil(res.body:find("00000", 1, true))
    end)
  end)

  it("gigstack.fiscal.cfdi names what a tampered CFDI breaks: arithmetic by rule, and the seal", function()
    support.with_mock(function(gs, server)
      local c = check(gs.clients:create(client_body()))
      local inv = check(gs.invoices:create{ client = { id = c.id }, payment_form = "03",
        items = { item(100, nil, { quantity = 3, discount = 10 }), item(50) } })
      local xml = verify_document(gs, server, "tamper", inv.uuid)
      local doc = assert(fiscal_cfdi.parse(xml))
      -- 300 - 10 + 46.40 and 50 + 8: SubTotal 350, Descuento 10, IVA 54.40, Total 394.40
      assert.same({ "350.00", "10.00", "394.40", "54.40", "MMA010101AB9", "3", "290.00" },
        { doc.SubTotal, doc.Descuento, doc.Total, doc.Impuestos.TotalImpuestosTrasladados, doc.Emisor.Rfc,
          doc.Conceptos[1].Cantidad, doc.Conceptos[1].Traslados[1].Base })
      local function rules(text)
        local ok, problems = fiscal_cfdi.check(text)
        assert.is_false(ok)
        local out = {}
        for _, p in ipairs(problems) do out[#out + 1] = p.rule end
        table.sort(out)
        return out
      end
      -- Total off by a cent: CFDI40119, and the seal no longer matches the cadena
      assert.same({ "CFDI40119", "sello" }, rules((xml:gsub('Total="394.40"', 'Total="394.41"'))))
      -- a line Importe outside Cantidad × ValorUnitario: "3" has no decimals, so the SAT
      -- allows (3 ± 0.5) × (100.00 ± 0.005) = 249.98..350.02; 301 passes, 400 does not
      assert.same({ "CFDI40108", "sello" }, rules((xml:gsub('Importe="300.00"', 'Importe="301.00"'))))
      assert.same({ "CFDI40108", "importe_limits", "sello" },
        rules((xml:gsub('Importe="300.00"', 'Importe="400.00"'))))
      -- a TotalImpuestosTrasladados that is not the summary's 54.40, so Total stops adding up too
      local summary = xml:gsub('TotalImpuestosTrasladados="54.40"', 'TotalImpuestosTrasladados="54.41"')
      assert.same({ "CFDI40119", "sello", "total_traslados" }, rules(summary))
      -- a summary Traslado whose Importe is not the lines' 46.40 + 8.00
      local group = xml:gsub('(<cfdi:Impuestos TotalImpuestosTrasladados="54.40">%s*<cfdi:Traslados>%s*'
        .. '<cfdi:Traslado Base="340.00" Impuesto="002" TipoFactor="Tasa" TasaOCuota="0.160000" Importe=")54.40"',
        '%154.39"')
      assert.not_equals(xml, group)
      assert.same({ "CFDI40221", "sello", "total_traslados" }, rules(group))
      -- a signature by another key (the PAC's) over the right cadena
      local other = assert(core.rsa_sha256_sign(test_csd.pac.private_key, assert(fiscal_cfdi.cadena(doc.xml))))
      local forged = xml:gsub(' Sello="[^"]*"', function() return ' Sello="' .. other .. '"' end, 1)
      assert.not_equals(xml, forged)
      assert.same({ "sello", "tfd" }, rules(forged))   -- and SelloCFD no longer equals Sello
      assert.is_nil((fiscal_cfdi.parse("<a><b></a>")))
      local _, perr = fiscal_cfdi.parse('<cfdi:Comprobante Version="3.3"/>')
      assert.matches("not a CFDI 4.0", perr)
    end)
  end)
end)
