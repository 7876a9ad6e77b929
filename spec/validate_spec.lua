-- Validation before sending: problems listed by field path, no request made.
local gigstack = require "gigstack"
local validate = require "gigstack.fiscal.validate"
local support = require "support"

local function fields(err)
  local t = {}
  for _, d in ipairs(err.details) do t[#t + 1] = d.field end
  table.sort(t)
  return t
end

local GOOD_CLIENT = { legal_name = "COMERCIALIZADORA DEL BAJIO", tax_id = "SAT970701NN3",
  tax_system = "601", use = "G03", address = { zip = "37000" },
  search = { on_key = "tax_id", on_value = "SAT970701NN3", auto_create = true } }

describe("validation before sending", function()
  it("lists all five mistakes of one payload in one error and sends nothing", function()
    support.with_mock(function(gs, server)
      local before = server.emulator.requests
      local p, err = gs.payments:register{
        automation_type = "pue_invoice", payment_form = "99",                 -- 1: 99 on PUE
        currency = "PESOS",                                                  -- 2: not c_Moneda
        client = { legal_name = "JUAN PEREZ", tax_id = "PEGJ801301AB6",      -- 3: month 13
          tax_system = "612", address = { zip = "0310" },                    -- 4: 4-digit zip
          search = { on_key = "tax_id", on_value = "PEGJ801301AB6", auto_create = true } },
        items = { { description = "Consultoría", quantity = 1, unit_price = 100 },
          { description = "Soporte", quantity = 2, unit_price = 50,
            taxes = { { type = "IVA", rate = 0.15 } } } },                    -- 5: IVA 15 %
      }
      assert.is_nil(p)
      assert.equals("validation", err.kind)
      assert.equals(0, err.status)
      assert.same({ "client.address.zip", "client.tax_id", "currency", "items[2].taxes[1].rate",
        "payment_form" }, fields(err))
      assert.matches("5 problems", err.message)
      assert.equals(before, server.emulator.requests)
    end)
  end)

  it("catches five different rule breaks with their field paths", function()
    local ok, err = validate.payment_register{
      automation_type = "ppd_invoice_and_complement", payment_form = "99",    -- its complement: never 99
      currency = "USD",                                                      -- exchange_rate missing
      client = { legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000",
        tax_system = "601", use = "G03" },                                   -- generic: 616 and S01
      items = { { description = "x", quantity = -1, unit_price = 10,         -- quantity
        taxes = { { type = "ISR", rate = 0.10 } } } },                       -- ISR only withheld
    }
    assert.is_nil(ok)
    assert.same({ "client.tax_system", "client.use", "exchange_rate", "items[1].quantity",
      "items[1].taxes[1].rate", "payment_form" }, fields(err))
    for _, d in ipairs(err.details) do assert.is_string(d.rule) end
  end)

  it("checks régimen against persona and uso against régimen", function()
    local _, err = validate.client{ legal_name = "X", tax_id = "CAMA911215CJ0", tax_system = "601" }
    assert.matches("not for personas físicas", err.details[1].rule)
    _, err = validate.client{ legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601", use = "D01" }
    assert.equals("client", err.code:sub(-6))
    assert.matches("uso D01", err.details[1].rule)
    _, err = validate.client{ legal_name = "X", tax_id = "CAMA911215CJ0", tax_system = "612", use = "P01" }
    assert.matches("not a c_UsoCFDI code", err.details[1].rule)
    assert.is_true((validate.client{ legal_name = "X", tax_id = "CAMA911215CJ0", tax_system = "612", use = "G03" }))
    assert.is_true((validate.client{ legal_name = "PUBLICO", tax_id = "XAXX010101000",
      tax_system = "616", use = "S01" }))
  end)

  it("requires a payment method when paid, on the older POST /payments", function()
    local _, err = validate.payment_create{ clientId = "client_1", paid = true, items = { { name = "x", total = 10 } } }
    assert.same({ "paymentMethod" }, fields(err))
  end)

  it("checks invoices: PPD with forma 99, PUE without it", function()
    local _, err = validate.invoice{ client = { id = "client_1" }, payment_method = "PPD", payment_form = "03",
      items = { { description = "x", unit_price = 1 } } }
    assert.same({ "payment_form" }, fields(err))
    assert.is_true((validate.invoice{ client = { id = "client_1" }, payment_method = "PPD", payment_form = "99",
      items = { { description = "x", unit_price = 1 } } }))
  end)

  it("reports a wrong RFC check digit as a warning, not an error", function()
    local ok, warnings = validate.client{ legal_name = "X", tax_id = "COSC8001137N9", tax_system = "612" }
    assert.is_true(ok)
    assert.matches("check digit", warnings[1].message)
  end)

  it("can be turned off per client or per call, and then the emulator answers", function()
    support.with_mock(function(gs, server)
      local body = { client = GOOD_CLIENT, items = { { description = "x", unit_price = 10,
        taxes = { { type = "IVA", rate = 0.15 } } } } }
      local _, local_err = gs.payments:register(body)
      assert.equals(0, local_err.status)
      local before = server.emulator.requests
      local _, remote_err = gs.payments:register(body, { validate = false })
      assert.equals(400, remote_err.status)
      assert.matches("items%[1%]%.taxes%[1%]%.rate", remote_err.message)
      assert.equals(before + 1, server.emulator.requests)
      local loose = gigstack.new{ api_key = server.api_key, base_url = server.base_url, validate = false }
      local _, e3 = loose.payments:register(body)
      assert.equals(400, e3.status)
    end)
  end)
end)

-- Issue 10: what the SAT or the PAC rejects is refused before a request
-- leaves. Each case changes one thing in a body that is otherwise valid
-- and checks the field, the SAT rule and that the emulator saw nothing.
describe("SAT rules before sending", function()
  local function invoice(over)
    local b = { client = { legal_name = "COMERCIALIZADORA DEL BAJIO", tax_id = "SAT970701NN3",
        tax_system = "601", use = "G03", address = { zip = "37000" } },
      payment_form = "03", payment_method = "PUE", currency = "MXN",
      items = { { description = "Consultoría", quantity = 1, unit_price = 1000, product_key = "84111506",
        unit_key = "E48", taxes = { { type = "IVA", rate = 0.16 } } } } }
    for k, v in pairs(over or {}) do b[k] = v end
    return b
  end
  local function item(over)
    local it = { description = "Consultoría", quantity = 1, unit_price = 1000, product_key = "84111506",
      unit_key = "E48", taxes = { { type = "IVA", rate = 0.16 } } }
    for k, v in pairs(over or {}) do it[k] = v end
    return it
  end
  local function client(over)
    local c = { legal_name = "COMERCIALIZADORA DEL BAJIO", tax_id = "SAT970701NN3", tax_system = "601",
      use = "G03", address = { zip = "37000" } }
    for k, v in pairs(over or {}) do c[k] = v or nil end   -- false removes a field
    return c
  end
  -- persona física, régimen 612: for the persona/régimen cases
  local function fisica(over)
    local c = { legal_name = "MARIA RODRIGUEZ", tax_id = "ROSM850315QT8", tax_system = "612", use = "G03",
      address = { zip = "06600" } }
    for k, v in pairs(over or {}) do c[k] = v or nil end   -- false removes a field
    return c
  end

  -- call(gs) must be refused locally: exactly `field`, naming `code` when given; nothing sent.
  local function refused(call, field, code)
    support.with_mock(function(gs, server)
      local before = server.emulator.requests
      local res, err = call(gs)
      assert.is_nil(res)
      assert.equals("validation", err.kind)
      assert.same({ field }, fields(err))
      if code then
        assert.equals(code, err.details[1].sat)
        assert.truthy(err.message:find(code, 1, true), err.message)
      end
      assert.equals(before, server.emulator.requests)
    end)
  end

  it("starts from bodies that pass", function()
    assert.is_true((validate.invoice(invoice())))
    assert.is_true((validate.invoice(invoice{ client = fisica() })))
    assert.is_true((validate.invoice(invoice{ currency = "USD", exchange_rate = 17.25 })))
    assert.is_true((validate.invoice(invoice{ exchange_rate = 1 })))
    assert.is_true((validate.client(client(), { creating = true })))
    assert.is_true((validate.client{ legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000",
      tax_system = "616", use = "S01" }))
  end)

  it("refuses CP01 on an income invoice (only for tipo P)", function()
    refused(function(gs) return gs.invoices:create(invoice{ use = "CP01" }) end, "use", "CFDI40161")
    refused(function(gs)
      return gs.payments:register{ automation_type = "pue_invoice", payment_form = "03",
        client = client{ use = "CP01" }, items = { item() } }
    end, "client.use", "CFDI40161")
  end)

  it("refuses a unit_key that breaks the c_ClaveUnidad pattern", function()
    refused(function(gs) return gs.invoices:create(invoice{ items = { item{ unit_key = "e48" } } }) end,
      "items[1].unit_key", "CFDI40165")
    refused(function(gs) return gs.invoices:create(invoice{ items = { item{ unit_key = "PIEZA" } } }) end,
      "items[1].unit_key", "CFDI40165")
  end)

  it("warns, and still sends, a unit_key that fits the pattern but is not in the shipped subset", function()
    -- DPC (docena de piezas) is a c_ClaveUnidad code the SDK's 35-code subset does not ship
    local ok, warnings = validate.invoice(invoice{ items = { item{ unit_key = "DPC" } } })
    assert.is_true(ok)
    assert.equals(1, #warnings)
    assert.equals("items[1].unit_key", warnings[1].field)
    assert.equals("CFDI40165", warnings[1].sat)
    support.with_mock(function(gs, server)
      local c = gigstack.check(gs.clients:create(client()))
      local before = server.emulator.requests
      local inv = gigstack.check(gs.invoices:create(invoice{ client = { id = c.id },
        items = { item{ unit_key = "DPC" } } }))
      assert.is_string(inv.uuid)
      assert.equals(before + 1, server.emulator.requests)
    end)
  end)

  it("sat.clave_unidad and sat.default_uso", function()
    local sat = require "gigstack.fiscal.sat"
    assert.same({ "known", "pattern" }, { sat.clave_unidad("E48"), sat.clave_unidad("DPC") })
    assert.is_nil(sat.clave_unidad("e48"))
    assert.is_nil(sat.clave_unidad("ABCD"))
    assert.same({ "S01", "S01", "S01", "G03" }, { sat.default_uso("XAXX010101000"),
      sat.default_uso("XEXX010101000", "616"), sat.default_uso("ROSM850315QT8", "616"),
      sat.default_uso("SAT970701NN3", "601") })
    -- the persona alone, when no régimen is known
    assert.same({ false, "is not for personas morales" }, { sat.uso_allows("D01", nil, "moral") })
  end)

  it("refuses exchange_rate = 0", function()
    refused(function(gs) return gs.invoices:create(invoice{ currency = "USD", exchange_rate = 0 }) end,
      "exchange_rate", "CFDI40117")
  end)

  it("refuses MXN with an exchange rate other than 1", function()
    refused(function(gs) return gs.invoices:create(invoice{ exchange_rate = 17.5 }) end,
      "exchange_rate", "CFDI40114")
  end)

  it("refuses an exchange rate with more than 6 decimals", function()
    refused(function(gs) return gs.invoices:create(invoice{ currency = "USD", exchange_rate = "17.1234567" }) end,
      "exchange_rate", "CFDI40117")
  end)

  it("refuses a discount larger than its line's importe", function()
    -- importe 2 × 50.00 = 100.00 < discount 100.01; 99.99 leaves a base of 0.01 and passes
    refused(function(gs)
      return gs.invoices:create(invoice{ items = { item{ quantity = 2, unit_price = 50, discount = 100.01 } } })
    end, "items[1].discount", "CFDI40169")
    assert.is_true((validate.invoice(invoice{ items = { item{ quantity = 2, unit_price = 50, discount = 99.99 } } })))
  end)

  it("refuses currency XXX on an income invoice (only T and P)", function()
    refused(function(gs) return gs.invoices:create(invoice{ currency = "XXX" }) end, "currency")
    refused(function(gs)
      return gs.payments:register{ automation_type = "pue_invoice", payment_form = "03", currency = "XXX",
        client = client(), items = { item() } }
    end, "currency")
  end)

  it("refuses a use the receptor's régimen does not allow (G03 for régimen 605)", function()
    refused(function(gs)
      return gs.invoices:create(invoice{ client = fisica{ tax_system = "605" } })
    end, "client.use", "CFDI40161")
  end)

  it("refuses a use not for the receptor's persona (D01 for a persona moral), also as the invoice's use", function()
    refused(function(gs) return gs.invoices:create(invoice{ client = client{ use = "D01" } }) end,
      "client.use", "CFDI40161")
    refused(function(gs) return gs.invoices:create(invoice{ use = "D01" }) end, "use", "CFDI40161")
    -- the persona alone decides when the régimen is not given
    refused(function(gs)
      return gs.clients:create{ legal_name = "X", tax_id = "SAT970701NN3", use = "D01" }
    end, "use", "CFDI40161")
  end)

  it("refuses an invoice to a receptor without a zip (DomicilioFiscalReceptor is required)", function()
    refused(function(gs) return gs.invoices:create(invoice{ client = client{ address = false } }) end,
      "client.address.zip")
    refused(function(gs)
      return gs.payments:register{ automation_type = "pue_invoice", payment_form = "03",
        client = client{ address = { street = "Av. Juárez 10" } }, items = { item() } }
    end, "client.address.zip")
  end)

  it("refuses a generic-RFC or régimen 616 client without a use: it must be S01, never the default G03", function()
    refused(function(gs)
      return gs.clients:create{ legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000", tax_system = "616" }
    end, "use", "CFDI40161")
    refused(function(gs)
      return gs.clients:create(fisica{ tax_system = "616", use = false })
    end, "use", "CFDI40161")
    refused(function(gs)
      return gs.invoices:create(invoice{ client = { legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000",
        tax_system = "616", address = { zip = "37000" } } })
    end, "client.use", "CFDI40161")
    -- the invoice's own use S01 covers it; a receipt payment (no invoice yet) needs none
    assert.is_true((validate.invoice(invoice{ use = "S01", client = { legal_name = "PUBLICO EN GENERAL",
      tax_id = "XAXX010101000", tax_system = "616" } })))
    assert.is_true((validate.payment_register{ automation_type = "receipt", payment_form = "01",
      client = { legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000", tax_system = "616" },
      items = { item() } }))
  end)

  it("gives a generic or 616 client without a use S01 in the emulator, never G03", function()
    support.with_mock(function(gs)
      local pub = gigstack.check(gs.clients:create({ legal_name = "PUBLICO EN GENERAL",
        tax_id = "XAXX010101000", tax_system = "616" }, { validate = false }))
      assert.equals("S01", pub.use)
      local sin = gigstack.check(gs.clients:create({ legal_name = "MARIA RODRIGUEZ",
        tax_id = "ROSM850315QT8", tax_system = "616" }, { validate = false }))
      assert.equals("S01", sin.use)
      local moral = gigstack.check(gs.clients:create({ legal_name = "X SA", tax_id = "SAT970701NN3",
        tax_system = "601" }, { validate = false }))
      assert.equals("G03", moral.use)   -- the API's documented default for everyone else
    end)
  end)

  it("refuses two IVA traslados on one line", function()
    refused(function(gs)
      return gs.invoices:create(invoice{ items = { item{ taxes = { { type = "IVA", rate = 0.16 },
        { type = "IVA", rate = 0.08 } } } } })
    end, "items[1].taxes[2]")
    -- a transferred and a withheld IVA on one line are fine
    assert.is_true((validate.invoice(invoice{ client = client(), items = { item{ taxes = {
      { type = "IVA", rate = 0.16 }, { type = "IVA", rate = 0.106667, withholding = true } } } } })))
  end)
end)

-- With validation off the emulator is the judge: it refuses the same
-- bodies with a 400 naming the same field.
describe("the emulator refuses what the SDK refuses", function()
  local OFF = { validate = false }
  local function item(over)
    local it = { description = "Consultoría", quantity = 1, unit_price = 1000, unit_key = "E48",
      taxes = { { type = "IVA", rate = 0.16 } } }
    for k, v in pairs(over or {}) do it[k] = v end
    return it
  end
  local function rejected(res, err, field)
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.truthy(err.message:find(field .. ":", 1, true), err.message)
  end

  it("CP01, a wrong unit_key, exchange rates, two IVAs, a use the persona or régimen does not allow, no zip",
    function()
    support.with_mock(function(gs)
      local moral = gigstack.check(gs.clients:create({ legal_name = "CLIENTE SA", tax_id = "SAT970701NN3",
        tax_system = "601", address = { zip = "06600" } }, OFF))
      local function invoice(over)
        local b = { client = { id = moral.id }, payment_form = "03", payment_method = "PUE", items = { item() } }
        for k, v in pairs(over) do b[k] = v end
        return gs.invoices:create(b, OFF)
      end
      -- the base body is accepted
      assert.is_string(gigstack.check(invoice{}).uuid)
      local res, err = invoice{ use = "CP01" }
      rejected(res, err, "use")
      res, err = invoice{ use = "D01" }                       -- D01 is for personas físicas
      rejected(res, err, "use")
      res, err = invoice{ items = { item{ unit_key = "e48" } } }
      rejected(res, err, "items[1].unit_key")
      res, err = invoice{ currency = "USD", exchange_rate = 0 }
      rejected(res, err, "exchange_rate")
      res, err = invoice{ exchange_rate = 17.5 }               -- MXN
      rejected(res, err, "exchange_rate")
      res, err = invoice{ currency = "USD", exchange_rate = 17.1234567 }
      rejected(res, err, "exchange_rate")
      res, err = invoice{ items = { item{ taxes = { { type = "IVA", rate = 0.16 }, { type = "IVA", rate = 0.08 } } } } }
      rejected(res, err, "items[1].taxes[2]")
      res, err = gs.clients:create({ legal_name = "MARIA RODRIGUEZ", tax_id = "ROSM850315QT8",
        tax_system = "605", use = "G03", address = { zip = "06600" } }, OFF)
      rejected(res, err, "use")
      local nozip = gigstack.check(gs.clients:create({ legal_name = "SIN CP SA", tax_id = "AAA010101AAA",
        tax_system = "601" }, OFF))
      res, err = gs.invoices:create({ client = { id = nozip.id }, payment_form = "03", items = { item() } }, OFF)
      rejected(res, err, "client.address.zip")
      res, err = gs.payments:register({ automation_type = "pue_invoice", payment_form = "03",
        currency = "USD", exchange_rate = 0, client = { id = moral.id }, items = { item() } }, OFF)
      rejected(res, err, "exchange_rate")
    end)
  end)
end)
