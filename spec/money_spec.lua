-- gigstack.fiscal.money: currency decimals and allocation that never loses a cent.
local money = require "gigstack.fiscal.money"
local decimal = require "gigstack.fiscal.decimal"

describe("money", function()
  it("rounds half-up to the currency's c_Moneda decimals", function()
    assert.equals("10.01", money.new("10.005"):format())
    assert.equals("1235", money.new("1234.5", "JPY"):format())
    assert.equals("1.000", money.new(1, "KWD"):format())
    assert.equals("0.3000", money.new("0.3", "CLF"):format())
    local none, err = money.new(1, "XYZ")
    assert.is_nil(none)
    assert.matches("not a c_Moneda code", err)
    assert.is_nil((money.new("12,50")))
  end)

  it("allocates by percentages and weights, largest remainder first", function()
    local parts = money.allocate("100.00", { 1, 1, 1 })
    assert.same({ "33.34", "33.33", "33.33" }, { parts[1]:format(), parts[2]:format(), parts[3]:format() })
    parts = money.allocate("1000.00", { 10, 90 })
    assert.same({ "100.00", "900.00" }, { parts[1]:format(), parts[2]:format() })
    parts = money.allocate("7", { "50", "50" }, "JPY")
    assert.same({ "4", "3" }, { parts[1]:format(), parts[2]:format() })
    assert.is_nil((money.allocate("10.00", { 0, 0 })))
    assert.is_nil((money.allocate("10.00", { 1, -1 })))
  end)

  it("10,000 random allocations sum exactly to the original amount", function()
    math.randomseed(20261121)
    for _ = 1, 10000 do
      local cents = math.random(0, 10000000000)
      local n = math.random(1, 12)
      local weights = {}
      for i = 1, n do
        weights[i] = math.random(0, 3) == 0 and string.format("%d.%04d", math.random(0, 99), math.random(0, 9999))
          or math.random(0, 1000)
      end
      weights[math.random(1, n)] = math.random(1, 1000)   -- at least one positive
      local amount = decimal.from_units(cents, 2)
      local parts = assert(money.allocate(amount, weights))
      local sum = 0
      for i, p in ipairs(parts) do
        assert.is_true(p.coef >= 0)
        sum = sum + p:units(2)
        if tonumber(weights[i]) == 0 then assert.equals(0, p.coef) end
      end
      assert.equals(cents, sum)
    end
  end)
end)

describe("money.scaled's whole-number shortcut", function()
  -- the general way: decimal.parse, then units at `places` (out of range: an error)
  local function general(v, places)
    local d, err = decimal.parse(v)
    if not d then return nil, err end
    local ok, units = pcall(d.units, d, places)
    if not ok then return nil, "is out of range" end
    return units
  end

  it("gives what parse and units give, over generated and edge values", function()
    local values = { 0, -0.0, 0.0, 1, -1, 1500.0, 1e15 - 1, 1e15, -1e15 + 1, 1e15 + 2, 2 ^ 53, 1e17,
      math.maxinteger, math.mininteger, math.maxinteger // 100, math.maxinteger // 100 + 1,
      -(math.maxinteger // 100), -(math.maxinteger // 100) - 1, 0.5, 1500.25, 0 / 0, math.huge }
    local state = 12
    for _ = 1, 5000 do
      state = (state * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
      local digits = state % 19
      local n = (state >> 8) % math.tointeger(10 ^ digits)
      if state & 1 == 1 then n = -n end
      values[#values + 1] = n
      values[#values + 1] = n + 0.0
    end
    for _, v in ipairs(values) do
      for _, places in ipairs{ 0, 2, 6, 12, 18, 19 } do
        local a, ae = money.scaled(v, places)
        local b, be = general(v, places)
        assert.equals(b, a, tostring(v) .. " at " .. places)
        assert.equals(be, ae, tostring(v) .. " at " .. places)
        assert.equals(math.type(b), math.type(a))
      end
    end
  end)
end)
