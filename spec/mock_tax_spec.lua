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
  it("IEPS 8 % and IVA 16 % included in the price: 125.28 nets to 100.00 (÷ 1.08 × 1.16)", function()
    with_client(function(gs)
      -- net = 125.28 / (1.08 × 1.16) = 100.000000; IEPS 8.00; IVA on 108.00 = 17.28 → taxes 25.28
      local p = register(gs, { { description = "x", unit_price = 125.28, taxes = {
        { type = "IEPS", rate = 0.08, inclusive = true }, { type = "IVA", rate = 0.16, inclusive = true } } } })
      assert.same({ 100, 25.28, 125.28 }, { p.subtotal, p.taxes, p.total })
    end)
  end)

  it("an IEPS cuota included in the price is not ignored: 10 litres at 29.00 total 290.00", function()
    with_client(function(gs)
      -- net per litre = 29.00 / 1.16 − 1.50 = 23.50; 10 × 23.50 = 235.00;
      -- IEPS 10 litres × 1.50 = 15.00; IVA (235.00 + 15.00) × 0.16 = 40.00 → taxes 55.00
      local p = register(gs, { { description = "x", quantity = 10, unit_price = 29, taxes = {
        { type = "IEPS", factor = "Cuota", rate = 1.5, inclusive = true },
        { type = "IVA", rate = 0.16, inclusive = true } } } })
      assert.same({ 235, 55, 290 }, { p.subtotal, p.taxes, p.total })
    end)
  end)

  it("withholds IVA on price + IEPS like the transferred IVA", function()
    with_client(function(gs)
      -- IEPS 26.50; IVA (100 + 26.50) × 0.16 = 20.24; withheld 126.50 × 0.106667 = 13.49;
      -- total 100 + 26.50 + 20.24 − 13.49 = 133.25
      local p = register(gs, { { description = "x", unit_price = 100, taxes = {
        { type = "IEPS", rate = 0.265 }, { type = "IVA", rate = 0.16 },
        { type = "IVA", rate = 0.106667, withholding = true } } } })
      assert.same({ 100, 46.74, 13.49, 133.25 }, { p.subtotal, p.taxes, p.withholding_taxes, p.total })
    end)
  end)
end)
