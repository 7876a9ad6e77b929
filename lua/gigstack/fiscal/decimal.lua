--- Exact decimals: an integer coefficient and a scale (digits after the
-- point). No float takes part in arithmetic; products go through a
-- small multi-limb multiplication so they never overflow silently.
-- Rounding is half-up (away from zero), the SAT's "redondeo".
local M = {}

local Decimal = {}
Decimal.__index = Decimal
Decimal.__name = "gigstack.Decimal"

local BASE = 10000000            -- limbs of 7 digits
local MAX_DIV = 900000000000     -- divisors up to 9e11 keep r * BASE in range

local function limbs(n)
  local t = {}
  repeat t[#t + 1] = n % BASE; n = n // BASE until n == 0
  return t
end

local function limb_mul(a, b)
  local out = {}
  for i = 1, #a + #b do out[i] = 0 end
  for i = 1, #a do
    local carry = 0
    for j = 1, #b do
      local cur = out[i + j - 1] + a[i] * b[j] + carry
      out[i + j - 1] = cur % BASE
      carry = cur // BASE
    end
    local k = i + #b
    while carry > 0 do
      local cur = out[k] + carry
      out[k] = cur % BASE
      carry = cur // BASE
      k = k + 1
    end
  end
  return out
end

local function limb_divmod(l, d)
  local q, r = {}, 0
  for i = #l, 1, -1 do
    local cur = r * BASE + l[i]
    q[i] = cur // d
    r = cur % d
  end
  return q, r
end

local function limb_int(l)
  local v = 0
  for i = #l, 1, -1 do
    if v > (math.maxinteger - l[i]) // BASE then return nil end
    v = v * BASE + l[i]
  end
  return v
end

--- (a * b) / d for integers, exactly, rounded half-up ("half_up"),
-- toward zero ("down") or away from zero ("up"); d > 0, d <= 9e11 or a power of ten up to 10^18.
-- Returns the integer and the remainder of the exact division, or nil,
-- "overflow".
-- Factors up to this size multiply within a Lua integer (|a·b| < 2^63):
-- the common case (amounts in cents times rates) takes no limbs.
local SMALL = 3037000499

function M.mul_div(a, b, d, mode)
  assert(d > 0, "divisor must be positive")
  if a == math.mininteger or b == math.mininteger then return nil, "overflow" end
  local neg = (a < 0) ~= (b < 0)
  local q, r
  if a < 0 then a = -a end
  if b < 0 then b = -b end
  if a <= SMALL and b <= SMALL then
    local p = a * b
    q, r = p // d, p % d
    if (mode == "up" and r > 0) or (mode == "half_up" and 2 * r >= d) then q = q + 1 end
    return neg and -q or q, r
  end
  local p = limb_mul(limbs(a), limbs(b))
  if d <= MAX_DIV then
    q, r = limb_divmod(p, d)
  else
    local d1 = 1000000000
    if d % d1 ~= 0 or d // d1 > MAX_DIV then error("decimal: unsupported divisor " .. d, 2) end
    local q1, r1 = limb_divmod(p, d1)
    local r2
    q, r2 = limb_divmod(q1, d // d1)
    r = r2 * d1 + r1
  end
  local v = limb_int(q)
  if not v then return nil, "overflow" end
  if (mode == "up" and r > 0) or (mode == "half_up" and 2 * r >= d) then v = v + 1 end
  return neg and -v or v, r
end

local POW10 = { [0] = 1 }
for i = 1, 18 do POW10[i] = POW10[i - 1] * 10 end
M.POW10 = POW10

-- coef * 10^k, or an error instead of a silent wrap-around.
local function scale_up(coef, k)
  if k > 18 then error("decimal: more than 18 decimal places", 3) end
  local f = POW10[k]
  if coef ~= 0 and (coef == math.mininteger or math.abs(coef) > math.maxinteger // f) then
    error("decimal: value out of range", 3)
  end
  return coef * f
end

local function new(coef, scale)
  return setmetatable({ coef = coef, scale = scale }, Decimal)
end

-- Decimals of the floats read lately (rates like 0.16 come in every
-- request); Decimals are never changed in place, so they can be shared.
-- Bounded: emptied when full.
local float_cache, float_cached = {}, 0

--- Parse a decimal string ("1370.76", "-0.5", "1e3" is refused) or a
-- number (read through its shortest decimal text). Returns a Decimal or
-- nil, message.
function M.parse(v)
  if getmetatable(v) == Decimal then return v end
  local text
  local mt = math.type(v)
  if mt == "integer" then return new(v, 0) end
  if mt == "float" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "must be a finite number" end
    -- an integral float below 10^15 reads as its integer (what %.15g writes)
    if v > -1e15 and v < 1e15 and v == math.floor(v) then return new(math.tointeger(v), 0) end
    local d = float_cache[v]
    if d then return d end
    text = string.format("%.15g", v)
    if text:find("e") then text = string.format("%.9f", v) end
    local err
    d, err = M.parse(text)
    if not d then return nil, err end
    if float_cached >= 512 then float_cache, float_cached = {}, 0 end
    float_cache[v] = d
    float_cached = float_cached + 1
    return d
  elseif type(v) == "string" then
    text = v:match("^%s*(.-)%s*$")
  elseif type(v) == "table" and v.text then    -- json.raw
    text = v.text
  else
    return nil, "must be a number or a decimal string"
  end
  local sign, int, frac = text:match("^([-+]?)(%d*)%.?(%d*)$")
  if not sign or (int == "" and frac == "") then
    return nil, "must be a decimal number, got " .. string.format("%q", text)
  end
  frac = frac:gsub("0+$", "")
  if #int + #frac > 18 then return nil, "has more than 18 significant digits" end
  local coef = math.tointeger(tonumber((int ~= "" and int or "0") .. frac))
  return new(sign == "-" and -coef or coef, #frac)
end

--- Like parse, but raises on bad input.
function M.new(v)
  local d, err = M.parse(v)
  if not d then error("decimal: " .. err, 2) end
  return d
end

local function coerce(v)
  if getmetatable(v) == Decimal then return v end
  return M.new(v)
end

local function align(a, b)
  if getmetatable(a) ~= Decimal or getmetatable(b) ~= Decimal then a, b = coerce(a), coerce(b) end
  if a.scale == b.scale then return a.coef, b.coef, a.scale end
  if a.scale < b.scale then
    return scale_up(a.coef, b.scale - a.scale), b.coef, b.scale
  end
  return a.coef, scale_up(b.coef, a.scale - b.scale), a.scale
end

function Decimal.__add(a, b)
  local x, y, s = align(a, b)
  return new(x + y, s)
end

function Decimal.__sub(a, b)
  local x, y, s = align(a, b)
  return new(x - y, s)
end

function Decimal.__unm(a)
  return new(-a.coef, a.scale)
end

function Decimal.__eq(a, b)
  local x, y = align(a, b)
  return x == y
end

function Decimal.__lt(a, b)
  local x, y = align(a, b)
  return x < y
end

function Decimal.__le(a, b)
  local x, y = align(a, b)
  return x <= y
end

--- Round half-up to exactly `places` decimals.
function Decimal:round(places)
  if self.scale == places then return self end   -- Decimals never change: share it
  if self.scale < places then return new(scale_up(self.coef, places - self.scale), places) end
  return new(M.mul_div(self.coef, 1, POW10[self.scale - places], "half_up"), places)
end

--- Drop digits past `places` (toward zero) / raise to the next unit.
function Decimal:truncate(places)
  if self.scale <= places then return self end
  return new(M.mul_div(self.coef, 1, POW10[self.scale - places], "down"), places)
end

function Decimal:ceil(places)
  if self.scale <= places then return self end
  local mode = self.coef > 0 and "up" or "down"
  return new(M.mul_div(self.coef, 1, POW10[self.scale - places], mode), places)
end

--- self * other with the result cut to `places` by mode "down" (toward
-- zero) or "up" (away from zero), exactly.
function Decimal:mul_to(other, places, mode)
  other = coerce(other)
  local scale = self.scale + other.scale
  local v
  if places >= scale then
    v = M.mul_div(self.coef, other.coef, 1, "down")
    v = v and scale_up(v, places - scale)
  else
    if scale - places > 18 then error("decimal: more than 18 decimal places", 2) end
    v = M.mul_div(self.coef, other.coef, POW10[scale - places], mode)
  end
  if not v then error("decimal: product out of range", 2) end
  return new(v, places)
end

--- self * other, rounded half-up to `places` (default: exact, if the
-- combined scale fits 18 digits).
function Decimal:mul(other, places)
  other = coerce(other)
  return self:mul_to(other, places or self.scale + other.scale, "half_up")
end

--- self / other rounded half-up to `places`.
function Decimal:div(other, places)
  other = coerce(other)
  if other.coef == 0 then error("decimal: division by zero", 2) end
  -- self.coef * 10^(places + other.scale - self.scale) / other.coef
  local shift = places + other.scale - self.scale
  local num, den = self.coef, other.coef
  local neg = (num < 0) ~= (den < 0)
  num, den = math.abs(num), math.abs(den)
  local v
  if shift >= 0 then
    if shift > 18 then error("decimal: more than 18 decimal places", 2) end
    if den > MAX_DIV then error("decimal: divisor has too many digits", 2) end
    v = M.mul_div(num, POW10[shift], den, "half_up")
  else
    den = scale_up(den, -shift)
    if den > MAX_DIV then error("decimal: divisor has too many digits", 2) end
    v = M.mul_div(num, 1, den, "half_up")
  end
  if not v then error("decimal: quotient out of range", 2) end
  return new(neg and -v or v, places)
end

function Decimal:is_zero() return self.coef == 0 end
function Decimal:sign() return self.coef > 0 and 1 or (self.coef < 0 and -1 or 0) end

--- Text with exactly `places` decimals (default: its own scale).
function Decimal:format(places)
  local d = places and self:round(places) or self
  places = places or d.scale
  local coef = d.coef * POW10[places - d.scale]
  if places == 2 and coef >= 0 then return string.format("%d.%02d", coef // 100, coef % 100) end   -- money
  local sign = coef < 0 and "-" or ""
  local digits = tostring(math.abs(coef))
  if places == 0 then return sign .. digits end
  if #digits <= places then digits = string.rep("0", places - #digits + 1) .. digits end
  return sign .. digits:sub(1, -places - 1) .. "." .. digits:sub(-places)
end

Decimal.__tostring = function(d) return d:format() end

--- The coefficient at `places` decimals (e.g. cents for 2), rounded.
function Decimal:units(places)
  local d = self:round(places)
  return d.coef * POW10[places - d.scale]
end

function M.from_units(units, places)
  return new(units, places)
end

function M.is(v)
  return getmetatable(v) == Decimal
end

M.zero = new(0, 0)

return M
