--- Error values. Every failure the SDK reports is one of these tables:
-- kind, status, code, message, details, request_id, method, path,
-- attempts, idempotency_key. They print well and never carry a key.
local M = {}

-- Secrets (API keys) a server might echo back: every error value and
-- log line is scrubbed of them, whatever their shape. Pattern redaction
-- (log.lua) stays as a second net.
local secrets = {}

--- Remember a secret so scrub() removes it; short strings are ignored
-- (they would eat ordinary words).
function M.add_secret(s)
  if type(s) == "string" and #s >= 8 then secrets[s] = true end
end

local function plain(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- text with every known secret replaced by "…redacted".
function M.scrub(text)
  if type(text) ~= "string" then return text end
  for s in pairs(secrets) do
    if text:find(s, 1, true) then text = text:gsub(plain(s), "…redacted") end
  end
  return text
end

local function scrub_tree(v, depth)
  if type(v) == "string" then return M.scrub(v) end
  if type(v) ~= "table" or depth > 8 then return v end
  for k, x in pairs(v) do v[k] = scrub_tree(x, depth + 1) end
  return v
end

local Error = {}
Error.__index = Error
Error.__name = "gigstack.Error"

function Error.__tostring(e)
  local parts = { "gigstack ", e.kind }
  if e.status and e.status > 0 then parts[#parts + 1] = " " .. e.status end
  if e.code then parts[#parts + 1] = " (" .. tostring(e.code) .. ")" end
  if e.method and e.path then
    parts[#parts + 1] = " on " .. e.method .. " " .. e.path
  end
  parts[#parts + 1] = ": " .. tostring(e.message)
  if e.request_id then parts[#parts + 1] = " [request " .. e.request_id .. "]" end
  return M.scrub(table.concat(parts))
end

--- Kinds by HTTP status; network-level kinds are set by the caller.
local by_status = {
  [400] = "validation", [401] = "auth", [403] = "forbidden",
  [404] = "not_found", [409] = "conflict", [413] = "too_large",
  [422] = "validation", [429] = "rate_limit",
}

function M.kind_for_status(status)
  if by_status[status] then return by_status[status] end
  if status >= 500 then return "server" end
  return "api"
end

function M.new(fields)
  fields.kind = fields.kind or "api"
  fields.message = fields.message or fields.kind
  if fields.code ~= nil and type(fields.code) ~= "string" and type(fields.code) ~= "number" then
    fields.code = nil   -- callers encode structured codes to text first
  end
  for _, k in ipairs{ "message", "code", "details", "location" } do
    fields[k] = scrub_tree(fields[k], 0)
  end
  return setmetatable(fields, Error)
end

function M.is(v)
  return getmetatable(v) == Error
end

--- Raise err as is (keeps the table); used by gigstack.check.
function M.raise(err, level)
  error(err, level or 2)
end

return M
