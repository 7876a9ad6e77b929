--- RFC (Registro Federal de Contribuyentes): normalise, validate
-- (SAT XSD pattern, real date), check digit (a warning: real RFCs with
-- a wrong digit exist), persona física / moral, generic RFCs.
local M = {}

M.GENERIC = "XAXX010101000"          -- público en general
M.GENERIC_FOREIGN = "XEXX010101000"  -- residentes en el extranjero

-- value of each character for the check digit; Ñ is handled apart
local DICT = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ "
local VALUE = {}
for i = 1, #DICT do VALUE[DICT:sub(i, i)] = i - 1 end

local N_TILDE = "\xC3\x91"   -- Ñ in UTF-8
local N_MARK = "#"           -- one byte standing for Ñ while we work

--- Trim, upper-case (ñ too), drop spaces, dashes and underscores.
function M.normalise(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("\xC3\xB1", N_TILDE):upper():gsub("[%s%-_]", "")
  return s
end

--- The check digit for an RFC (the given last character is ignored).
function M.check_digit(rfc)
  local s = rfc:gsub(N_TILDE, N_MARK)
  local body = s:sub(1, -2)
  if #body == 11 then body = " " .. body end
  local sum = 0
  for i = 1, #body do
    local ch = body:sub(i, i)
    local v = ch == N_MARK and 38 or (VALUE[ch] or 0)
    sum = sum + v * (14 - i)
  end
  local r = sum % 11
  if r == 0 then return "0" elseif r == 1 then return "A" end
  return tostring(11 - r)
end

local function real_date(yy, mm, dd)
  local y, m, d = 2000 + tonumber(yy), tonumber(mm), tonumber(dd)
  if m < 1 or m > 12 or d < 1 then return false end
  local days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then days[2] = 29 end
  return d <= days[m]
end

--- Validate. Returns info {rfc, type = "fisica"|"moral", generic,
-- foreign, warnings = {...}} or nil, message (the rule broken).
-- opts.lenient accepts any letter or digit as the last character (the
-- documentation's own examples use PEGJ800101ABC); it is then a warning.
function M.parse(input, opts)
  local rfc = M.normalise(input)
  if not rfc or rfc == "" then return nil, "is required" end
  if rfc == M.GENERIC or rfc == M.GENERIC_FOREIGN then
    return { rfc = rfc, type = "generic", generic = true,
      foreign = rfc == M.GENERIC_FOREIGN, warnings = {} }
  end
  local s = rfc:gsub(N_TILDE, N_MARK)
  if #s ~= 12 and #s ~= 13 then
    return nil, "must have 12 (persona moral) or 13 (persona física) characters, got " .. #s
  end
  local last = (opts and opts.lenient) and "[A-Z0-9]" or "[0-9A]"
  local letters, yy, mm, dd = s:match("^([A-Z&#]+)(%d%d)(%d%d)(%d%d)[A-Z0-9][A-Z0-9]" .. last .. "$")
  if not letters or #letters ~= #s - 9 then
    return nil, "must be 3-4 letters, a date YYMMDD, a 2-character homoclave and a "
      .. "check digit 0-9 or A (e.g. PEGJ800101AB1)"
  end
  if not real_date(yy, mm, dd) then
    return nil, string.format("has an impossible date %s-%s-%s", yy, mm, dd)
  end
  local info = { rfc = rfc, type = #s == 13 and "fisica" or "moral", generic = false,
    foreign = false, warnings = {} }
  local expected = M.check_digit(rfc)
  if expected ~= s:sub(-1) then
    info.warnings[1] = string.format("check digit is %s, expected %s (some real RFCs have "
      .. "a wrong digit; confirm with the customer's Constancia)", s:sub(-1), expected)
  end
  return info
end

function M.is_valid(input)
  return M.parse(input) ~= nil
end

--- "fisica", "moral", "generic", or nil for an invalid RFC.
function M.persona(input)
  local info = M.parse(input)
  return info and info.type
end

return M
