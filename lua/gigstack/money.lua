--- Exact money on integer minor units (centavos). No float takes part
-- in arithmetic: numbers are read through their decimal text and
-- rounded half-up (away from zero) to two decimals.
local json = require "gigstack.json"

local M = {}

--- Parse a decimal string into an integer scaled by 10^places,
-- rounding half-up. Returns nil, message on bad input.
function M.scaled(v, places)
  local text
  if math.type(v) == "integer" then
    return v * math.tointeger(10 ^ places)
  elseif type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      return nil, "must be a finite number"
    end
    text = string.format("%.10f", v)
  elseif type(v) == "string" then
    text = v:match("^%s*(.-)%s*$")
  else
    return nil, "must be a number or a decimal string"
  end
  local sign, int, frac = text:match("^([-+]?)(%d*)%.?(%d*)$")
  if not sign or (int == "" and frac == "") then
    return nil, "must be a decimal number, got " .. string.format("%q", text)
  end
  if #int > 15 then return nil, "is too large" end
  local digits = frac .. string.rep("0", places + 1)
  local kept = tonumber((int ~= "" and int or "0") .. digits:sub(1, places)) or 0
  if tonumber(digits:sub(places + 1, places + 1)) >= 5 then kept = kept + 1 end
  return sign == "-" and -kept or kept
end

--- Amount in cents from a number or decimal string.
function M.cents(v)
  return M.scaled(v, 2)
end

--- Integer division rounding half-up (away from zero).
function M.div_round(a, b)
  local q, r = a // b, a % b
  if a < 0 ~= (b < 0) and r ~= 0 then
    -- floor division went below; work on magnitudes instead
    local qa = math.abs(a) // math.abs(b)
    local ra = math.abs(a) % math.abs(b)
    if 2 * ra >= math.abs(b) then qa = qa + 1 end
    return -qa
  end
  if 2 * r >= math.abs(b) then q = q + 1 end
  return q
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

return M
