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

describe("tax fixes (issue 10)", function()
  local IEPS_CUOTA = "1.500000"   -- a per-litre IEPS cuota inside c_TasaOCuota's 0–72.1605 range

  it("IEPS Cuota: Base is the number of units and Importe = Base × TasaOCuota within the limits", function()
    -- 10 litres at 23.50: Importe 10 × 23.50 = 235.00.
    -- IEPS Cuota 1.500000 per litre: Base = Cantidad = 10 (litres, not 235.00),
    --   Importe = 10 × 1.5 = 15.00; limits with Base written "10" (0 decimals):
    --   LI = trunc((10 − 0.5) × 1.5) = 14.25, LS = ceil((10 + 0.5 − 1e-12) × 1.5) = 15.75.
    -- IVA on price + IEPS: Base 235.00 + 15.00 = 250.00, Importe 40.00; Total 290.00.
    local line = tax.line{ quantity = 10, unit_price = "23.50",
      taxes = { { type = "IEPS", factor = "Cuota", rate = IEPS_CUOTA }, iva() } }
    local ieps = line.traslados[1]
    assert.same({ "IEPS", "Cuota", "10", "15.00" },
      { ieps.impuesto, ieps.tipo_factor, ieps.base:format(), ieps.importe:format() })
    local ok, li, ls = tax.within_limits(ieps.importe, ieps.base, ieps.tasa)
    assert.is_true(ok)
    assert.same({ "14.25", "15.75" }, { li:format(), ls:format() })
    assert.same({ "250.00", "40.00" }, { line.traslados[2].base:format(), line.traslados[2].importe:format() })
    local doc = tax.document{ lines = { { quantity = 10, unit_price = "23.50",
      taxes = { { type = "IEPS", factor = "Cuota", rate = IEPS_CUOTA }, iva() } } } }
    assert.same({ "235.00", "55.00", "290.00" },
      { doc.subtotal:format(), doc.total_traslados:format(), doc.total:format() })
    assert.equals("10.00", doc.traslados[1].base:format())   -- summary Base: Σ units, currency decimals
  end)

  it("back-computes a net price from a gross one compounding IEPS and IVA (LIVA art. 18)", function()
    -- gross = p × (1 + 0.08) × (1 + 0.16) = p × 1.2528 → p = 125.28 / 1.2528 = 100.000000
    -- (the additive 1 + 0.08 + 0.16 = 1.24 gives 101.032258, whose invoice totals 126.57).
    local taxes = { { type = "IEPS", rate = "0.08" }, iva() }
    local unit = tax.unit_price_from_gross("125.28", taxes)
    assert.equals("100.000000", unit:format())
    -- check: Importe 100.00, IEPS 8.00, IVA on 108.00 = 17.28, Total 125.28
    local doc = tax.document{ lines = { { unit_price = unit, taxes = taxes } } }
    assert.same({ "100.00", "25.28", "125.28" },
      { doc.subtotal:format(), doc.total_traslados:format(), doc.total:format() })
  end)

  it("back-computes a net price with an IEPS cuota instead of ignoring it", function()
    -- gross per litre 29.00 = (p + 1.50) × 1.16 → p = 29.00 / 1.16 − 1.50 = 25.00 − 1.50 = 23.500000
    -- (ignoring the cuota gives 25.000000 and 10 litres would total 306.60 instead of 290.00).
    local taxes = { { type = "IEPS", factor = "Cuota", rate = IEPS_CUOTA }, iva() }
    local unit = tax.unit_price_from_gross("29.00", taxes)
    assert.equals("23.500000", unit:format())
    local doc = tax.document{ lines = { { quantity = 10, unit_price = unit, taxes = taxes } } }
    assert.equals("290.00", doc.total:format())
  end)

  it("tax.line rounds to the currency's decimals: JPY 0, USD 2", function()
    -- JPY (c_Moneda decimales 0): 3 × 333 = 999; IVA 999 × 0.16 = 159.84 → 160.
    local jpy = tax.line{ currency = "JPY", quantity = 3, unit_price = "333", taxes = { iva() } }
    assert.same({ "999", "160" }, { jpy.importe:format(), jpy.traslados[1].importe:format() })
    -- USD (2): 1 × 10.005 = 10.005 → 10.01; IVA 10.01 × 0.16 = 1.6016 → 1.60.
    local usd = tax.line{ currency = "USD", unit_price = "10.005", taxes = { iva() } }
    assert.same({ "10.01", "1.60" }, { usd.importe:format(), usd.traslados[1].importe:format() })
    assert.has_error(function() tax.line{ currency = "ZZZ", unit_price = "1" } end)
  end)

  it("withholds IVA on the same base as the transferred IVA, IEPS included", function()
    -- 100.00 with IEPS 26.5 %: IEPS 26.50; IVA base 100.00 + 26.50 = 126.50 → IVA 20.24;
    -- IVA withheld 126.50 × 0.106667 = 13.4933755 → 13.49 (not 100.00 × 0.106667 = 10.67).
    -- Total 100.00 + 26.50 + 20.24 − 13.49 = 133.25.
    local taxes = { { type = "IEPS", rate = "0.265" }, iva(),
      { type = "IVA", rate = tax.RET_IVA_TWO_THIRDS, withholding = true } }
    local line = tax.line{ unit_price = "100.00", taxes = taxes }
    assert.same({ "126.50", "13.49" }, { line.retenciones[1].base:format(), line.retenciones[1].importe:format() })
    assert.equals(line.traslados[2].base, line.retenciones[1].base)
    assert.equals("133.25", tax.document{ lines = { { unit_price = "100.00", taxes = taxes } } }.total:format())
  end)

  it("reads a numeric base with the Importe's decimals: 10000.0 is 10000.00, not 10000", function()
    -- 10000.0 is written 10000.00 (2 decimals): limits (10000 ∓ 0.005) × 0.106667 → [1066.66, 1066.68],
    -- the same as the string "10000.00"; read as 0 decimals it would be ∓0.5 → [1066.61, 1066.73].
    for _, base in ipairs{ 10000.0, 10000, "10000.00" } do
      local li, ls = tax.limits(base, tax.RET_IVA_TWO_THIRDS)
      assert.same({ "1066.66", "1066.68" }, { li:format(), ls:format() }, tostring(base))
    end
    -- a string keeps its written decimals: "10000" → ∓0.5 → [1066.61, 1066.73]
    local li, ls = tax.limits("10000", tax.RET_IVA_TWO_THIRDS)
    assert.same({ "1066.61", "1066.73" }, { li:format(), ls:format() })
    -- JPY (0 decimals): 10000.0 → ∓0.5 and a 0-decimal Importe: [1066, 1067]
    li, ls = tax.limits(10000.0, tax.RET_IVA_TWO_THIRDS, 0)
    assert.same({ "1066", "1067" }, { li:format(), ls:format() })
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

  -- (a * b) / d by schoolbook long arithmetic on base-10^4 digits: the
  -- reference for mul_div, whose small factors skip the limbs
  local function ref_mul_div(a, b, d, mode)
    local neg = (a < 0) ~= (b < 0)
    a, b = math.abs(a), math.abs(b)
    local function digits(n)
      local t = {}
      repeat t[#t + 1] = n % 10000; n = n // 10000 until n == 0
      return t
    end
    local x, y, p = digits(a), digits(b), {}
    for i = 1, #x + #y do p[i] = 0 end
    for i = 1, #x do
      for j = 1, #y do
        local k = i + j - 1
        p[k] = p[k] + x[i] * y[j]
        while p[k] >= 10000 do p[k + 1] = p[k + 1] + p[k] // 10000; p[k] = p[k] % 10000; k = k + 1 end
      end
    end
    local q, r = {}, 0
    for i = #p, 1, -1 do
      local cur = r * 10000 + p[i]
      q[i] = cur // d
      r = cur % d
    end
    local v = 0
    for i = #q, 1, -1 do
      if v > (math.maxinteger - q[i]) // 10000 then return nil, "overflow" end
      v = v * 10000 + q[i]
    end
    if (mode == "up" and r > 0) or (mode == "half_up" and 2 * r >= d) then v = v + 1 end
    return neg and -v or v, r
  end

  it("mul_div agrees with long arithmetic around the small-factor shortcut (|a|, |b| <= 3037000499)", function()
    math.randomseed(1212)
    local edges = { 0, 1, 2, 99, 3037000498, 3037000499, 3037000500, 3037000501, 4294967296, 9007199254740993 }
    local modes = { "down", "up", "half_up" }
    local differ = 0
    for n = 1, 20000 do
      local a = n % 3 == 0 and edges[math.random(#edges)] or math.random(0, 2 ^ math.random(1, 40))
      local b = n % 5 == 0 and edges[math.random(#edges)] or math.random(0, 2 ^ math.random(1, 40))
      if math.random(2) == 1 then a = -a end
      if math.random(3) == 1 then b = -b end
      local d = ({ 1, 2, 100, 1000000, 999999, 900000000000, math.random(1, 1000) })[math.random(7)]
      local mode = modes[math.random(3)]
      local q1, r1 = decimal.mul_div(a, b, d, mode)
      local q2, r2 = ref_mul_div(a, b, d, mode)
      if q1 ~= q2 or (q1 and r1 ~= r2) then
        differ = differ + 1
        if differ < 5 then print(a, b, d, mode, q1, r1, q2, r2) end
      end
    end
    assert.equals(0, differ)
  end)

  it("parses a float as its shortest text, also when it was parsed before (cached) or the cache was emptied", function()
    local function via_text(v)
      local text = string.format("%.15g", v)
      if text:find("e") then text = string.format("%.9f", v) end
      return decimal.parse(text)
    end
    math.randomseed(77)
    local values = { 1500.0, -0.0, -5.0, 0.16, 0.1, 1e15, -1e15, 999999999999999.0, 123456789012345.0,
      1e-7, 2.5e-9, 1e300 }
    for _ = 1, 2000 do   -- more distinct floats than the cache keeps
      values[#values + 1] = math.random(-10 ^ 9, 10 ^ 9) / 10 ^ math.random(0, 8)
    end
    for pass = 1, 2 do
      for _, v in ipairs(values) do
        local d, err = decimal.parse(v)
        local want, want_err = via_text(v)
        if want then
          assert.is_true(d ~= nil and d.coef == want.coef and d.scale == want.scale,
            string.format("pass %d: %.17g -> %s, want %s", pass, v, tostring(d), tostring(want)))
        else
          assert.same({ nil, want_err }, { d, err })
        end
      end
    end
    assert.same({ nil, "has more than 18 significant digits" }, { decimal.parse(1e20) })
    assert.same({ nil, "must be a finite number" }, { decimal.parse(0 / 0) })
  end)
end)

describe("sat.tasa_allows", function()
  local sat = require "gigstack.fiscal.sat"
  -- the check as first written: the catalog's text values parsed on every call
  local function reference(impuesto, factor, rate, withholding)
    if factor == "Exento" then
      if withholding then return false, "Exento applies only to transferred taxes" end
      return true
    end
    local r, err = decimal.parse(rate)
    if not r then return false, err end
    local seen = {}
    for _, row in ipairs(sat.catalogs.c_TasaOCuota) do
      local imp = row.impuesto:match("^(%u+)")
      if imp == impuesto and row.factor == factor
          and ((withholding and row.retencion) or (not withholding and row.traslado)) then
        if row.tipo == "Fijo" then
          if r == decimal.new(row.valor) then return true end
          seen[#seen + 1] = row.valor
        else
          if r >= decimal.new(row.minimo) and r <= decimal.new(row.valor) then return true end
          seen[#seen + 1] = row.minimo .. "-" .. row.valor
        end
      end
    end
    if #seen == 0 then
      return false, string.format("%s %s is not allowed as %s", impuesto, factor,
        withholding and "a retención" or "a traslado")
    end
    return false, string.format("%s is not a c_TasaOCuota value for %s %s %s (allowed: %s)",
      r:format(6), impuesto, factor, withholding and "retención" or "traslado", table.concat(seen, ", "))
  end

  it("answers as the plain catalog walk for every impuesto, factor, side and catalog value (and between)", function()
    local rates = { 0, 0.16, 0.08, "0.160000", 0.106667, 0.04, 0.1, 0.0125, 0.265, 0.3, 0.53, 1.6, 3.0,
      0.35, 0.5, -0.1, 7, "x", {}, 0.1066666, 2 / 30, 0 / 0, 0.160000001 }
    for _, row in ipairs(sat.catalogs.c_TasaOCuota) do
      rates[#rates + 1] = row.valor
      if row.minimo then rates[#rates + 1] = row.minimo end
      rates[#rates + 1] = (decimal.new(row.valor) + decimal.new("0.000001")):format()
    end
    local n = 0
    -- twice, sides in both orders: the second answers come from the
    -- remembered rates, which must not leak between sides (nil and "yes"
    -- are falsy and truthy sides as the catalog walk reads them)
    local sides = { false, true, "yes", "none" }
    for pass = 1, 4 do
      for _, impuesto in ipairs{ "IVA", "ISR", "IEPS" } do
        for _, factor in ipairs{ "Tasa", "Cuota", "Exento" } do
          for k = 1, #sides do
            local withholding = sides[pass % 2 == 1 and k or #sides + 1 - k]
            if withholding == "none" then withholding = nil end
            for _, rate in ipairs(rates) do
              assert.same({ reference(impuesto, factor, rate, withholding) },
                { sat.tasa_allows(impuesto, factor, rate, withholding) })
              n = n + 1
            end
          end
        end
      end
    end
    assert.is_true(n > 2000)
  end)
end)

describe("Decimal:format", function()
  -- the general path (digits and sub), the reference of the money shortcut
  local function reference(d, places)
    d = d:round(places)
    local coef = d.coef * decimal.POW10[places - d.scale]
    local sign = coef < 0 and "-" or ""
    local digits = tostring(math.abs(coef))
    if places == 0 then return sign .. digits end
    if #digits <= places then digits = string.rep("0", places - #digits + 1) .. digits end
    return sign .. digits:sub(1, -places - 1) .. "." .. digits:sub(-places)
  end

  it("writes every value at 0..6 places as the general path does, money (2 places) included", function()
    math.randomseed(99)
    for n = 1, 20000 do
      local coef = n <= 300 and (n - 150) or math.random(-10 ^ math.random(1, 12), 10 ^ math.random(1, 12))
      local d = decimal.from_units(coef, math.random(0, 6))
      local places = n % 3 == 0 and 2 or math.random(0, 6)
      assert.equals(reference(d, places), d:format(places))
    end
    assert.equals("0.05", decimal.from_units(5, 2):format(2))
    assert.equals("-0.05", decimal.from_units(-5, 2):format(2))
    assert.equals("1740.00", decimal.new("1740"):format(2))
  end)
end)
