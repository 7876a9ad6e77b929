-- The emulator's CFDI 4.0 XML, fetched through the SDK (invoices:files):
-- valid against the SAT's XSDs (xmllint), cadena original equal to the
-- SAT's XSLT output byte for byte (xsltproc), Sello and SelloSAT verified
-- by openssl with the certificates the documents carry, JSON totals equal
-- to the XML's. The seals are the emulator's TEST certificates.
local gigstack = require "gigstack"
local http = require "gigstack.http"
local decimal = require "gigstack.decimal"
local core = require "gigstack.core"
local support = require "support"
local test_csd = require "gigstack.mock.test_csd"
local mock_cfdi = require "gigstack.mock.cfdi"

local check = gigstack.check
local D = decimal.new

local XSD = os.getenv("SAT_XSD_DIR") or "/work/shared/reference/sat-xsd"

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

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

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
end)
