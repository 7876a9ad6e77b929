-- Emulator rules of both documentation generations, through the SDK with
-- its own validation off, so every request reaches the emulator.
local gigstack = require "gigstack"
local json = require "gigstack.async.json"
local support = require "support"

local function client_body()
  return { name = "Maria Rodriguez", tax_id = "ROSM850315QT8", tax_system = "612",
    address = { zip = "06100" }, email = "maria@ejemplo.mx" }
end

describe("emulator", function()
  it("older POST /payments takes item totals in units and answers amount in cents", function()
    support.with_mock(function(gs)
      local c = gigstack.check(gs.clients:create(client_body()))
      local p = gigstack.check(gs.payments:create{ clientId = c.id,
        items = { { name = "Consultoría", total = 1500 } }, currency = "MXN" })
      assert.equals(150000, p.amount)
      assert.equals("requires_payment_method", p.status)
      assert.matches("^payment%w+$", p.id)
    end, { validate = false })
  end)

  it("older POST /payments requires paymentMethod when paid and rejects a repeated internalId with 409", function()
    support.with_mock(function(gs)
      local c = gigstack.check(gs.clients:create(client_body()))
      local _, err = gs.payments:create{ clientId = c.id, paid = true, items = { { name = "x", total = 10 } } }
      assert.equals(400, err.status)
      assert.equals("VALIDATION_ERROR", err.code)
      assert.is_string(err.details.paymentMethod)
      local body = { clientId = c.id, items = { { name = "x", total = 10 } },
        metadata = { internalId = "INV-1" } }
      gigstack.check(gs.payments:create(body))
      local _, dup = gs.payments:create(body)
      assert.equals(409, dup.status)
      assert.equals("conflict", dup.kind)
    end, { validate = false })
  end)

  it("older POST /payments with paid and automaticInvoice issues an invoice", function()
    support.with_mock(function(gs)
      local c = gigstack.check(gs.clients:create(client_body()))
      local p = gigstack.check(gs.payments:create{ clientId = c.id, paid = true, paymentMethod = "03",
        automaticInvoice = true, items = { { name = "x", total = 250.5 } } })
      assert.equals(25050, p.amount)
      assert.equals("succeeded", p.status)
      local inv = gigstack.check(gs.invoices:get(p.invoices[1]))
      assert.equals(250.5, inv.total)
    end, { validate = false })
  end)

  it("register computes exact totals: three lines of 333.33 with IVA 16% total 1159.99", function()
    support.with_mock(function(gs)
      local c = gigstack.check(gs.clients:create(client_body()))
      local p = gigstack.check(gs.payments:register{ client = { id = c.id }, automation_type = "pue_invoice",
        payment_form = "03", items = { { description = "Consultoría", quantity = 3,
          unit_price = json.raw("333.33"), taxes = { { type = "IVA", rate = 0.16, factor = "Tasa" } } } } })
      assert.equals(999.99, p.subtotal)
      assert.equals(160, p.taxes)
      assert.equals(1159.99, p.total)
      local invoices = gigstack.check(gs.invoices:list())
      assert.equals(1, invoices.total_results)
      assert.equals(p.invoice_id, invoices.data[1].uuid)
      assert.equals("PUE", invoices.data[1].payment_method)
      assert.equals("valid", invoices.data[1].status)
    end, { validate = false })
  end)

  it("register finds or auto-creates the client by tax_id", function()
    support.with_mock(function(gs)
      local body = { client = { name = "Nuevo", tax_id = "NUEV800101AB1", tax_system = "612",
        search = { on_key = "tax_id", on_value = "NUEV800101AB1", auto_create = true } },
        items = { { description = "x", unit_price = 100 } } }
      local a = gigstack.check(gs.payments:register(body))
      local b = gigstack.check(gs.payments:register(body))
      assert.equals(a.client.id, b.client.id)
      assert.equals(1, gigstack.check(gs.clients:list()).total_results)
      body.client.search.auto_create = false
      body.client.search.on_value = "OTRO800101AB1"
      local _, err = gs.payments:register(body)
      assert.equals(404, err.status)
    end, { validate = false })
  end)

  it("register replays an idempotency key: same payment, nothing created", function()
    support.with_mock(function(gs)
      local c = gigstack.check(gs.clients:create(client_body()))
      local body = { client = { id = c.id }, automation_type = "pue_invoice", payment_form = "04",
        items = { { description = "x", unit_price = 100 } } }
      local a = gigstack.check(gs.payments:register(body, { idempotency_key = "sale-77" }))
      local b = gigstack.check(gs.payments:register(body, { idempotency_key = "sale-77" }))
      assert.equals(a.id, b.id)
      assert.equals("sale-77", a.idempotency_key)
      assert.equals(1, gigstack.check(gs.payments:list()).total_results)
      assert.equals(1, gigstack.check(gs.invoices:list()).total_results)
      local fresh = gigstack.check(gs.payments:register(body))
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", fresh.idempotency_key)
    end, { validate = false })
  end)

  it("register validates before creating anything and names each field", function()
    support.with_mock(function(gs)
      local _, err = gs.payments:register{ client = { id = "client_x" }, automation_type = "pue_invoice",
        currency = "JPY", items = { { quantity = 0, unit_price = -1 } } }
      assert.equals(400, err.status)
      local fields = {}
      for _, d in ipairs(err.details) do fields[d.field] = true end
      for _, f in ipairs{ "currency", "payment_form", "items[1].description", "items[1].unit_price" } do
        assert.is_true(fields[f], "missing " .. f)
      end
      assert.equals(0, gigstack.check(gs.payments:list()).total_results)
    end, { validate = false })
  end)

  it("answers unknown paths with 404 and wrong methods with 405", function()
    support.with_mock(function(gs)
      local _, e1 = gs:request("GET", "/nothing")
      assert.equals(404, e1.status)
      local _, e2 = gs:request("PATCH", "/clients")
      assert.equals(405, e2.status)
    end, { validate = false })
  end)
end)
