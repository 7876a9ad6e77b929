--- Error values. Every failure the SDK reports is one of these tables:
-- kind, status, code, message, details, request_id, method, path,
-- attempts, idempotency_key. They print well and never carry a key.
local M = {}

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
  return table.concat(parts)
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
