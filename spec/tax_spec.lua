-- gigstack.fiscal.tax against the worked examples of cfdi-domain.md §3.6.
local tax = require "gigstack.fiscal.tax"
local decimal = require "gigstack.fiscal.decimal"

local function iva(rate) return { type = "IVA", rate = rate or tax.IVA } end

describe("tax", function()
  it("A: honorarios persona física to persona moral total 9533.33", function()
    local doc = tax.document{ lines = { { quantity = 1, unit_price = "10000.00", taxes = {
      iva(), { type = "IVA", rate = tax.RET_IVA_TWO_THIRDS, withholding = true },
      { type = "ISR", rate = tax.RET_ISR_FEES, withholding = true } } } } }
    assert.equals("10000.00", doc.subtotal:format())
    assert.equals("1600.00", doc.total_traslados:format())
    assert.equals("2066.67", doc.total_retenidos:format())
    assert.equals("9533.33", doc.total:format())
    local li, ls = tax.limits("10000.00", tax.RET_IVA_TWO_THIRDS)
    assert.same({ "1066.66", "1066.68" }, { li:format(), ls:format() })
  end)

  it("B: retained IVA on base 12850.84 is 1370.76, and 2/3 of the IVA (1370.75) is outside the SAT limits", function()
    for _, case in ipairs{ { "12850.84", "1370.76" }, { "14672.21" }, { "14909.78" }, { "16493.58" } } do
      local base = case[1]
      local line = tax.line{ unit_price = base, taxes = {
        { type = "IVA", rate = tax.RET_IVA_TWO_THIRDS, withholding = true }, iva() } }
      local retained = line.retenciones[1].importe
      if case[2] then assert.equals(case[2], retained:format()) end
      assert.is_true((tax.within_limits(retained, base, tax.RET_IVA_TWO_THIRDS)))
      local two_thirds = line.traslados[1].importe:mul(2):div(3, 2)
      assert.is_false((tax.within_limits(two_thirds, base, tax.RET_IVA_TWO_THIRDS)), base)
    end
    local li, ls = tax.limits("12850.84", tax.RET_IVA_TWO_THIRDS)
    assert.same({ "1370.76", "1370.77" }, { li:format(), ls:format() })
  end)

  it("C: RESICO ISR retention on 10000.00 is 125.00", function()
    local line = tax.line{ unit_price = "10000.00", taxes = {
      { type = "ISR", rate = tax.RET_ISR_RESICO, withholding = true } } }
    assert.equals("125.00", line.retenciones[1].importe:format())
  end)

  it("D: three units at 100.00 IVA incluido total 300.00 with a 6-decimal unit price (300.01 naively)", function()
    local unit = tax.unit_price_from_gross("100.00", { iva() })
    assert.equals("86.206897", unit:format())
    local doc = tax.document{ line_decimals = 6, lines = { { quantity = 3, unit_price = unit, taxes = { iva() } } } }
    assert.same({ "258.62", "41.38", "300.00" },
      { doc.subtotal:format(), doc.total_traslados:format(), doc.total:format() })
    local naive = tax.document{ lines = { { quantity = 3, unit_price = "86.21", taxes = { iva() } } } }
    assert.equals("300.01", naive.total:format())
  end)

  it("E: three lines of 0.33 sum their tax to 0.15, not 0.16", function()
    local line = { unit_price = "0.33", taxes = { iva() } }
    local doc = tax.document{ lines = { line, line, line } }
    assert.equals("0.15", doc.total_traslados:format())
    assert.equals("0.99", doc.subtotal:format())
    assert.equals("1.14", doc.total:format())
    local fine = tax.document{ line_decimals = 6, lines = { line, line, line } }
    assert.equals("0.16", fine.total_traslados:format())
  end)

  it("F: discount 2 x 499.99 less 100.00 totals 1043.98", function()
    local doc = tax.document{ lines = { { quantity = 2, unit_price = "499.99", discount = "100.00",
      taxes = { iva() } } } }
    assert.same({ "999.98", "100.00", "899.98", "144.00", "1043.98" }, { doc.subtotal:format(),
      doc.descuento:format(), doc.traslados[1].base:format(), doc.total_traslados:format(), doc.total:format() })
  end)

  it("groups traslados by impuesto, factor and tasa, and retenciones by impuesto", function()
    local doc = tax.document{ lines = {
      { unit_price = "100.00", taxes = { iva(), { type = "ISR", rate = "0.10", withholding = true } } },
      { unit_price = "100.00", taxes = { iva(tax.IVA_BORDER) } },
      { unit_price = "50.00", taxes = { { type = "IVA", factor = "Exento" } } },
      { unit_price = "100.00", taxes = { iva(), { type = "ISR", rate = "0.0125", withholding = true } } },
    } }
    assert.equals(3, #doc.traslados)
    assert.same({ "IVA", "Tasa", "0.160000", "200.00", "32.00" }, { doc.traslados[1].impuesto,
      doc.traslados[1].tipo_factor, doc.traslados[1].tasa:format(6), doc.traslados[1].base:format(),
      doc.traslados[1].importe:format() })
    assert.equals("8.00", doc.traslados[2].importe:format())
    assert.is_nil(doc.traslados[3].importe)
    assert.equals("50.00", doc.traslados[3].base:format())
    assert.equals(1, #doc.retenciones)
    assert.equals("11.25", doc.retenciones[1].importe:format())
    assert.equals("350.00", doc.subtotal:format())
    assert.equals("378.75", doc.total:format())
  end)

  it("computes IVA on the price plus IEPS, and omits the transferred total when all is Exento", function()
    local line = tax.line{ unit_price = "100.00", taxes = { iva(), { type = "IEPS", rate = "0.265" } } }
    assert.equals("26.50", line.traslados[1].importe:format())
    assert.equals("126.50", line.traslados[2].base:format())
    assert.equals("20.24", line.traslados[2].importe:format())
    local exento = tax.document{ lines = { { unit_price = "10.00", taxes = { { type = "IVA", factor = "Exento" } } } } }
    assert.is_nil(exento.total_traslados)
    assert.equals("10.00", exento.total:format())
  end)

  it("rounds to the currency's decimals: JPY 0, KWD 3", function()
    local jpy = tax.document{ currency = "JPY", lines = { { quantity = 3, unit_price = "333", taxes = { iva() } } } }
    assert.equals("1159", jpy.total:format())
    local kwd = tax.document{ currency = "KWD", lines = { { unit_price = "1.2345", taxes = { iva() } } } }
    assert.equals("1.433", kwd.total:format())   -- 1.235 + 0.198
    assert.has_error(function() tax.document{ currency = "ZZZ", lines = {} } end)
  end)
end)

describe("decimal", function()
  it("rounds half-up away from zero and never goes through a float", function()
    assert.equals("2.68", decimal.new("2.675"):round(2):format())
    assert.equals("-3.34", decimal.new("-3.335"):round(2):format())
    assert.equals("0.160000", decimal.new("0.16"):format(6))
    assert.equals("0.3", (decimal.new(0.1) + decimal.new(0.2)):format())
    assert.equals("123456789012.35", decimal.new("123456789012.345"):round(2):format())
    assert.equals("1000000000000.00", decimal.new("1000000000"):mul("1000.000000", 2):format())
  end)
end)
