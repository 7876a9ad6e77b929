--- Emulator wire helpers: envelopes and the error shapes of both
-- documentation generations.
local json = require "gigstack.async.json"

local M = {}

--- A failure carried up to the router: status, code, message, details.
local Fail = {}
Fail.__index = Fail

function M.fail(status, code, message, details)
  error(setmetatable({ status = status, code = code, message = message,
    details = details }, Fail), 0)
end

function M.is_fail(v)
  return getmetatable(v) == Fail
end

-- Older-generation codes for the newer snake_case ones.
local old_codes = {
  validation_failed = "VALIDATION_ERROR", resource_not_found = "NOT_FOUND",
  unauthorized = "UNAUTHORIZED", forbidden = "FORBIDDEN",
  resource_conflict = "CONFLICT", invalid_request_body = "VALIDATION_ERROR",
}

--- Error body: newer `{message, error}` (plus `details`), or older
-- `{error: {code, message, details: {field: msg}}, message}`.
function M.error_body(f, older)
  if older then
    local map
    if f.details then
      map = {}
      for _, d in ipairs(f.details) do map[d.field] = d.message end
    end
    return { message = f.message, error = { code = old_codes[f.code] or f.code:upper(),
      message = f.message, details = map } }
  end
  return { message = f.message, error = f.code, details = f.details }
end

function M.object(data, message)
  return { message = message or "Operation completed successfully", data = data }
end

function M.list(items, has_more, next_cursor, total, message)
  return { message = message or "Resources retrieved successfully", data = items,
    has_more = has_more, next = next_cursor or json.null, total_results = total }
end

return M
