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
      automation_type = "ppd_invoice_and_complement", payment_form = "03",    -- PPD needs 99
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
