-- The emulator's totals against cfdi-domain.md's worked examples (the
-- figures are the document's, not the SDK's).
local gigstack = require "gigstack"
local support = require "support"

local CLIENT = { id = nil }

local function register(gs, items)
  return gigstack.check(gs.payments:register({ client = CLIENT, items = items,
    automation_type = "pue_invoice", payment_form = "03" }, { validate = false }))
end

describe("emulator totals", function()
  local function with_client(body)
    support.with_mock(function(gs)
      CLIENT.id = gigstack.check(gs.clients:create{ legal_name = "CLIENTE SA", tax_id = "SAT970701NN3",
        tax_system = "601", address = { zip = "06600" } }).id
      body(gs)
    end)
  end

  it("A: honorarios total 9533.33 with 2066.67 withheld", function()
    with_client(function(gs)
      local p = register(gs, { { description = "Honorarios", unit_price = 10000, taxes = {
        { type = "IVA", rate = 0.16 }, { type = "IVA", rate = 0.106667, withholding = true },
        { type = "ISR", rate = 0.10, withholding = true } } } })
      assert.same({ 10000, 1600, 2066.67, 9533.33 }, { p.subtotal, p.taxes, p.withholding_taxes, p.total })
    end)
  end)

  it("B: retained IVA on 12850.84 is 1370.76", function()
    with_client(function(gs)
      local p = register(gs, { { description = "x", unit_price = 12850.84, taxes = {
        { type = "IVA", rate = 0.106667, withholding = true } } } })
      assert.equals(1370.76, p.withholding_taxes)
    end)
  end)

  it("E: three lines of 0.33 carry 0.15 of IVA", function()
    with_client(function(gs)
      local line = { description = "x", unit_price = 0.33, taxes = { { type = "IVA", rate = 0.16 } } }
      local p = register(gs, { line, line, line })
      assert.same({ 0.99, 0.15, 1.14 }, { p.subtotal, p.taxes, p.total })
    end)
  end)

  it("D: three units at 100.00 IVA incluido total 300.00", function()
    with_client(function(gs)
      local p = register(gs, { { description = "x", quantity = 3, unit_price = 100,
        taxes = { { type = "IVA", rate = 0.16, inclusive = true } } } })
      assert.same({ 258.62, 41.38, 300 }, { p.subtotal, p.taxes, p.total })
    end)
  end)

  it("F: discount example totals 1043.98", function()
    with_client(function(gs)
      local p = register(gs, { { description = "x", quantity = 2, unit_price = 499.99, discount = 100,
        taxes = { { type = "IVA", rate = 0.16 } } } })
      assert.same({ 144, 1043.98 }, { p.taxes, p.total })
    end)
  end)
end)
