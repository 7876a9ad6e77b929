--- Field validation for emulator handlers: collects every problem with
-- its field path and rule, then fails once with all of them.
local wire = require "gigstack.mock.wire"
local json = require "gigstack.async.json"
local money = require "gigstack.fiscal.money"
local rfc = require "gigstack.fiscal.rfc"

local M = {}
local Checker = {}
Checker.__index = Checker

function M.new()
  return setmetatable({ problems = {} }, Checker)
end

function Checker:add(field, message)
  self.problems[#self.problems + 1] = { field = field, message = message }
end

function Checker:done()
  if #self.problems == 0 then return end
  local parts = {}
  for i, p in ipairs(self.problems) do parts[i] = p.field .. ": " .. p.message end
  wire.fail(400, "validation_failed", table.concat(parts, "; "), self.problems)
end

local function present(v)
  return v ~= nil and v ~= json.null and v ~= ""
end
M.present = present

function Checker:string(t, key, path, required)
  local v = t[key]
  if not present(v) then
    if required then self:add(path, "is required") end
    return nil
  end
  if type(v) ~= "string" then self:add(path, "must be a string"); return nil end
  return v
end

function Checker:object(t, key, path, required)
  local v = t[key]
  if not present(v) then
    if required then self:add(path, "is required") end
    return nil
  end
  if type(v) ~= "table" or json.is_array(v) then self:add(path, "must be an object"); return nil end
  return v
end

function Checker:array(t, key, path, required)
  local v = t[key]
  if not present(v) or (type(v) == "table" and next(v) == nil) then
    if required then self:add(path, "is required and must not be empty") end
    return nil
  end
  if type(v) ~= "table" or #v == 0 then self:add(path, "must be an array"); return nil end
  return v
end

--- A money amount in major units -> cents (half-up), or nil.
function Checker:amount(t, key, path, required)
  local v = t[key]
  if not present(v) then
    if required then self:add(path, "is required") end
    return nil
  end
  if type(v) ~= "number" then self:add(path, "must be a number"); return nil end
  local cents, err = money.cents(v)
  if not cents then self:add(path, err); return nil end
  if cents < 0 then self:add(path, "must not be negative"); return nil end
  return cents
end

function Checker:one_of(t, key, path, allowed, default)
  local v = t[key]
  if not present(v) then return default end
  for _, a in ipairs(allowed) do
    if v == a then return v end
  end
  self:add(path, "must be one of " .. table.concat(allowed, ", "))
  return nil
end

--- Update `obj` through apply(checker, copy): every problem is
-- reported and nothing changes unless all of it is valid.
function M.update(obj, apply)
  local c = M.new()
  local copy = {}
  for k, v in pairs(obj) do copy[k] = v end
  apply(c, copy)
  c:done()
  for k, v in pairs(copy) do obj[k] = v end
  return obj
end

--- RFC per the SAT pattern and a real date (gigstack.fiscal.rfc), lenient on
-- the check character like the documentation's examples; nil or the rule.
function M.rfc_problem(v)
  local _, err = rfc.parse(v, { lenient = true })
  return err
end

M.PAYMENT_FORMS = { "01", "02", "03", "04", "05", "06", "08", "12", "13", "14", "15",
  "17", "23", "24", "25", "26", "27", "28", "29", "30", "31", "99" }
M.TAX_SYSTEMS = { "601", "603", "605", "606", "607", "608", "610", "611", "612", "614",
  "615", "616", "620", "621", "622", "623", "624", "625", "626" }
M.CURRENCIES = { "MXN", "USD", "EUR" }

return M
