-- The emulator's integer-cents fast path (amounts.fast_line, the compact
-- lines amounts.items makes and amounts.totals sums) against the general
-- Decimal path (tax.line, tax.document) over generated lines: the same
-- validation problems, the same line figures and the same totals text.
local amounts = require "gigstack.mock.amounts"
local check = require "gigstack.mock.check"

-- a small LCG of its own: the same cases on every run and Lua
local state = 20261201
local function rand(n)
  state = (state * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
  return (state >> 20) % n + 1
end
local function pick(t) return t[rand(#t)] end

local TAXES = {
  { type = "IVA", rate = 0.16 }, { type = "IVA", rate = 0.08 }, { type = "IVA", rate = 0 },
  { type = "IVA", factor = "Exento" },
  { type = "IVA", rate = 0.106667, withholding = true }, { type = "IVA", rate = 0.04, withholding = true },
  { type = "IVA", rate = 2 / 30, withholding = true }, { type = "IVA", rate = 0.1066666666, withholding = true },
  { type = "ISR", rate = 0.10, withholding = true }, { type = "ISR", rate = 0.0125, withholding = true },
  { type = "ISR", rate = 0.35, withholding = true },
  { type = "IEPS", rate = 0.265 }, { type = "IEPS", rate = 0.08 }, { type = "IEPS", rate = 1.6 },
  { type = "IEPS", rate = 0.3, withholding = true },
  { type = "IEPS", factor = "Cuota", rate = 5.9195 },        -- general path only
  { type = "IVA", rate = 0.16, inclusive = true },          -- general path only
  { type = "IVA", rate = 0.17 },                            -- refused by both
}

local function gen_rate()
  if rand(4) == 1 then return (rand(160000000) - 1) / 1e9, "IVA" end   -- up to 9 decimals
  return (rand(350000) - 1) / 1e6, "ISR"
end

local function gen_item()
  local item = { description = "x" }
  local r = rand(10)
  if r <= 6 then item.quantity = rand(5)
  elseif r == 7 then item.quantity = rand(1000000) + 0.0    -- a whole float
  elseif r == 8 then item.quantity = rand(2000) / 8          -- fractions: general path
  elseif r == 9 then item.quantity = rand(3) * 1000000 end   -- past MAX_QTY sometimes
  local p = rand(12)
  local price
  if p <= 8 then price = rand(5000000) - 1                    -- up to 50,000.00
  elseif p <= 10 then price = rand(3037000499) + 30000000    -- around SMALL
  elseif p == 11 then price = rand(1000000000000)            -- near MAX_PRICE
  else price = 1000000000000 + rand(1000) end                -- past it
  if rand(4) == 1 then
    item.discount = (rand(3) == 1 and rand(price + 2) or rand(100000)) / 100
  end
  local taxes = {}
  for _ = 1, rand(4) - 1 do
    if rand(6) == 1 then
      local rate, kind = gen_rate()
      taxes[#taxes + 1] = { type = kind, rate = rate, withholding = true }
    else
      taxes[#taxes + 1] = pick(TAXES)
    end
  end
  if #taxes > 0 or rand(2) == 1 then item.taxes = taxes end
  return item, price
end

local function problems_of(c)
  local out = {}
  for i, p in ipairs(c.problems) do out[i] = p.field .. ": " .. p.message end
  return out
end

local function sum(list)
  local s = 0
  for _, t in ipairs(list) do
    if t.importe then s = s + t.importe:units(2) end
  end
  return s
end

describe("emulator fast tax path", function()
  it("prices generated lines and documents as the general Decimal path does", function()
    local compact, docs = 0, 0
    for case = 1, 6000 do
      local n = rand(4)
      local fast_lines, slow_lines = {}, {}
      local fc, sc = check.new(), check.new()
      for i = 1, n do
        local item, price = gen_item()
        local path = "items[" .. i .. "]"
        local fl = amounts.line(fc, item, path, price, true)
        local sl = amounts.line(sc, item, path, price)
        assert.same(problems_of(sc), problems_of(fc), "case " .. case)
        assert.equals(sl == nil, fl == nil, "case " .. case)
        if fl then
          assert.is_false(amounts.is_compact(sl))
          if amounts.is_compact(fl) then
            compact = compact + 1
            local importe, descuento, traslados, retenciones = amounts.compact_figures(fl)
            assert.equals(sl.importe:units(2), importe, "case " .. case)
            assert.equals(sl.descuento:units(2), descuento, "case " .. case)
            assert.equals(sum(sl.traslados), traslados, "case " .. case)
            assert.equals(sum(sl.retenciones), retenciones, "case " .. case)
            local m = amounts.materialize(fl)
            assert.equals(sl.importe, m.importe)
            assert.equals(sum(sl.traslados), sum(m.traslados))
          end
          fast_lines[#fast_lines + 1], slow_lines[#slow_lines + 1] = fl, sl
        end
      end
      if #fc.problems == 0 then
        docs = docs + 1
        local currency = pick{ "MXN", "MXN", "USD", "EUR", "JPY" }
        local fp, sp = {}, {}
        amounts.totals(fp, fast_lines, currency)
        amounts.totals(sp, slow_lines, currency)
        assert.same({ sp.subtotal.text, sp.taxes.text, sp.withholding_taxes.text, sp.total.text },
          { fp.subtotal.text, fp.taxes.text, fp.withholding_taxes.text, fp.total.text }, "case " .. case)
        -- a document mixing compact and Decimal lines
        if #fast_lines > 1 then
          local mixed = { slow_lines[1] }
          for i = 2, #fast_lines do mixed[i] = fast_lines[i] end
          local mp = {}
          amounts.totals(mp, mixed, currency)
          assert.equals(sp.total.text, mp.total.text)
        end
      end
    end
    -- the cases exercise both paths
    assert.is_true(compact > 5000, "compact lines: " .. compact)
    assert.is_true(docs > 2000, "documents: " .. docs)
  end)

  it("keeps amounts.line's Decimal lines for callers that do not ask for compact ones", function()
    local c = check.new()
    local line = amounts.line(c, { quantity = 2, taxes = { { type = "IVA", rate = 0.16 } } }, "items[1]", 1050)
    assert.equals("21.00", line.importe:format(2))
    assert.equals("3.36", line.traslados[1].importe:format(2))
  end)

  it("rounds half-up at the cent like tax.line (cfdi-domain.md: 12850.84 x 0.106667 = 1370.76)", function()
    local c = check.new()
    local l = amounts.line(c, { taxes = { { type = "IVA", rate = 0.106667, withholding = true } } },
      "items[1]", 1285084, true)
    assert.is_true(amounts.is_compact(l))
    assert.equals(137076, select(4, amounts.compact_figures(l)))
    local p = {}
    amounts.totals(p, { l }, "MXN")
    assert.same({ "12850.84", "0.00", "1370.76", "11480.08" },
      { p.subtotal.text, p.taxes.text, p.withholding_taxes.text, p.total.text })
  end)
end)
