--- One line per event on stderr: text on a terminal, JSON lines
-- otherwise (or as set with --log-format text|json). Values that look
-- like API keys are redacted.
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"

local M = { format = nil, out = io.stderr, lines = {} }

local function is_tty()
  return require("gigstack.core").isatty(2)
end

-- The exact keys this process knows first, then anything shaped like one.
local function redact(v)
  if type(v) ~= "string" then return v end
  v = errors.scrub(v)
  return (v:gsub("sk_%w+_[%w_%-%.]+", "sk_…redacted"):gsub("eyJ[%w_%-]+%.[%w_%-]+%.?[%w_%-]*", "…redacted")
    :gsub("Bearer%s+%S+", "Bearer …redacted"))
end

-- An error value prints as its one line; another table as JSON.
local function text_of(v)
  if type(v) ~= "table" or errors.is(v) or getmetatable(v) then return tostring(v) end
  return json.encode(v) or tostring(v)
end

--- log.event("schedule.skipped", {job = "...", reason = "..."}, "warn")
function M.event(name, fields, level)
  fields = fields or {}
  level = level or "info"
  M.format = M.format or (is_tty() and "text" or "json")
  local line
  if M.format == "json" then
    local rec = { ts = os.date("!%Y-%m-%dT%H:%M:%SZ"), level = level, event = name }
    for k, v in pairs(fields) do rec[k] = redact(type(v) == "table" and text_of(v) or v) end
    line = json.encode(rec)
  else
    local keys = {}
    for k in pairs(fields) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = { os.date("%H:%M:%S"), level, name }
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. redact(text_of(fields[k])) end
    line = table.concat(parts, " ")
  end
  M.lines[#M.lines + 1] = line
  if #M.lines > 1000 then table.remove(M.lines, 1) end
  M.out:write(line, "\n")
  M.out:flush()
end

return M
