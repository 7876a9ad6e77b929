--- Exact money on integer minor units (centavos). No float takes part
-- in arithmetic: numbers are read through their decimal text and
-- rounded half-up (away from zero) to two decimals.
local json = require "gigstack.async.json"
local decimal = require "gigstack.fiscal.decimal"
local sat = require "gigstack.fiscal.sat"

local M = {}

--- An integer scaled by 10^places (half-up) from a number or decimal
-- string, or nil, message.
local POW10 = decimal.POW10

function M.scaled(v, places)
  -- a whole number (what decimal.parse reads with 0 decimals), in range:
  -- its integer times 10^places, without the two Decimals of the general way
  local t = math.type(v)
  if t == "integer" or (t == "float" and v > -1e15 and v < 1e15 and v == math.floor(v)) then
    local n, f = math.tointeger(v), POW10[places]
    if f and n ~= math.mininteger and math.abs(n) <= math.maxinteger // f then return n * f end
  end
  local d, err = decimal.parse(v)
  if not d then return nil, err end
  local ok, units = pcall(d.units, d, places)
  if not ok then return nil, "is out of range" end
  return units
end

--- Amount in cents from a number or decimal string.
function M.cents(v)
  return M.scaled(v, 2)
end

--- Integer division rounding half-up (away from zero), exact for any
-- signs.
function M.div_round(a, b)
  local neg = (a < 0) ~= (b < 0)
  local q = decimal.mul_div(math.abs(a), 1, math.abs(b), "half_up")
  return neg and -q or q
end

--- "1160.50" from 116050.
function M.format(cents)
  local sign = cents < 0 and "-" or ""
  cents = math.abs(cents)
  return string.format("%s%d.%02d", sign, cents // 100, cents % 100)
end

--- A JSON literal with exactly two decimals.
function M.json(cents)
  return json.raw(M.format(cents))
end

--- An amount in `currency` (default MXN) rounded half-up to the
-- currency's decimals (c_Moneda: MXN 2, JPY 0, KWD 3, CLF 4). Returns a
-- Decimal, or nil, message.
function M.new(value, currency)
  currency = currency or "MXN"
  local places = sat.decimals(currency)
  if not places then return nil, "currency " .. tostring(currency) .. " is not a c_Moneda code" end
  local d, err = decimal.parse(value)
  if not d then return nil, err end
  return d:round(places)
end

--- Split `amount` (a value in `currency`) by `weights` (percentages or
-- any non-negative weights, numbers or decimal strings) so that the
-- parts add up to the amount exactly: each part gets its floor, then the
-- leftover minor units go to the largest remainders (earlier first on
-- ties). Returns a list of Decimals, or nil, message.
function M.allocate(amount, weights, currency)
  currency = currency or "MXN"
  local places = sat.decimals(currency)
  if not places then return nil, "currency " .. tostring(currency) .. " is not a c_Moneda code" end
  local total, err = decimal.parse(amount)
  if not total then return nil, "amount " .. err end
  local units = total:units(places)
  if type(weights) ~= "table" or #weights == 0 then return nil, "weights must be a non-empty list" end
  local ws, scale = {}, 0
  for i, w in ipairs(weights) do
    local d, werr = decimal.parse(w)
    if not d then return nil, string.format("weights[%d] %s", i, werr) end
    if d:sign() < 0 then return nil, string.format("weights[%d] must not be negative", i) end
    ws[i] = d
    if d.scale > scale then scale = d.scale end
  end
  local sum = 0
  for i, d in ipairs(ws) do
    ws[i] = d.coef * decimal.POW10[scale - d.scale]
    sum = sum + ws[i]
  end
  if sum <= 0 then return nil, "weights must add up to more than zero" end
  if sum > 900000000000 then return nil, "weights are too large or too precise" end
  local sign = units < 0 and -1 or 1
  units = math.abs(units)
  local parts, rems, given = {}, {}, 0
  for i, w in ipairs(ws) do
    local floor, r = decimal.mul_div(units, w, sum, "down")
    if not floor then return nil, "amount is too large" end
    parts[i] = floor
    given = given + floor
    rems[i] = { i = i, r = r }   -- remainders share the divisor: comparable
  end
  table.sort(rems, function(a, b)
    if a.r ~= b.r then return a.r > b.r end
    return a.i < b.i
  end)
  for k = 1, units - given do
    local i = rems[k].i
    parts[i] = parts[i] + 1
  end
  local out = {}
  for i, p in ipairs(parts) do out[i] = decimal.from_units(sign * p, places) end
  return out
end

return M
