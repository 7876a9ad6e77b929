--- JSON on lua-cjson for decoding, with a small encoder of our own.
-- Debian's cjson 2.1.0 decodes every number as a float and cannot tell
-- an empty array from an empty object; the OpenResty fork can. Both are
-- handled: integral floats become integers, arrays marked with
-- json.array() (or cjson.array_mt) encode as [] even when empty, and
-- json.raw() emits a decimal literal exactly (money never goes through
-- a float).
local cjson = require "cjson.safe"
local core = require "gigstack.core"

local M = {}

M.null = cjson.null
M.array_mt = cjson.array_mt or { __name = "gigstack.async.json.array" }
local raw_mt = { __name = "gigstack.async.json.raw" }

if cjson.decode_array_with_array_mt then cjson.decode_array_with_array_mt(true) end
if cjson.decode_max_depth then cjson.decode_max_depth(200) end

function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

function M.is_array(t)
  return getmetatable(t) == M.array_mt
end

--- A literal to be written as is, e.g. json.raw("1160.50").
function M.raw(text)
  return setmetatable({ text = text }, raw_mt)
end

local fixup, array_mt = core.json_fixup, M.array_mt

--- Decode text; returns value or nil, message. Integral numbers come
-- back as Lua integers and non-empty arrays carry json.array's mark,
-- with either cjson (the walk that ensures it is C: core.json_fixup).
function M.decode(text)
  if type(text) ~= "string" then return nil, "JSON text must be a string" end
  local v, err = cjson.decode(text)
  if v == nil and err then return nil, err end
  return fixup(v, array_mt)
end

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function escape(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end

local find, gsub = string.find, string.gsub

local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end   -- the common case: nothing to escape
  return '"' .. gsub(s, '[%c"\\]', escape) .. '"'
end

local function number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then
    error("cannot encode " .. tostring(x) .. " as JSON", 0)
  end
  local s = string.format("%.14g", x)
  if tonumber(s) ~= x then s = string.format("%.17g", x) end
  return s
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local encode_value

local function encode_table(t, out, depth)
  if depth > 100 then error("JSON nesting deeper than 100", 0) end
  local mt = getmetatable(t)
  if mt == raw_mt then out[#out + 1] = t.text; return end
  if mt == M.array_mt or is_sequence(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys, n, mixed = {}, 0, false
  for k in pairs(t) do
    if type(k) ~= "string" then
      if math.type(k) ~= "integer" then
        error("JSON object keys must be strings, got " .. type(k), 0)
      end
      mixed = true
    end
    n = n + 1
    keys[n] = k
  end
  -- string keys sort with the built-in comparator (no Lua call per
  -- comparison); integer keys are rare and sort as their text
  if mixed then table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  else table.sort(keys) end
  local o = #out
  out[o + 1] = "{"
  o = o + 1
  for i = 1, n do
    local k = keys[i]
    out[o + 1] = (i > 1 and "," or "") .. quote(tostring(k)) .. ":"
    encode_value(t[k], out, depth + 1)
    o = #out
  end
  out[o + 1] = "}"
end

function encode_value(v, out, depth)
  local tv = type(v)
  if v == nil or v == M.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = number(v)
  elseif tv == "string" then out[#out + 1] = quote(v)
  elseif tv == "table" then encode_table(v, out, depth)
  else error("cannot encode a " .. tv .. " as JSON", 0) end
end

local c_encode, null = core.json_encode, M.null

--- Encode v; keys are sorted so output is stable. Returns text or
-- nil, message. The work is C (core.json_encode, same rules as
-- encode_lua below, which stays as the reference the specs compare with).
function M.encode(v)
  return c_encode(v, array_mt, raw_mt, null)
end

--- The same encoding in Lua (the reference for core.json_encode).
function M.encode_lua(v)
  local out = {}
  local ok, err = pcall(encode_value, v, out, 0)
  if not ok then return nil, err end
  return table.concat(out)
end

return M
