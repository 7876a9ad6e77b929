--- One line per event on stderr: text on a terminal, JSON lines
-- otherwise (or as set with --log-format text|json). Values that look
-- like API keys are redacted.
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"

-- debug: tracebacks in text mode too (--debug, GIGSTACK_DEBUG=1)
local M = { format = nil, out = io.stderr, lines = {}, debug = os.getenv("GIGSTACK_DEBUG") == "1" }

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

--- The format in use: the one set, else text on a terminal, JSON lines otherwise.
function M.resolve()
  M.format = M.format or (is_tty() and "text" or "json")
  return M.format
end

--- One line for any error: an error value prints kind, status, message
-- and request id; a string loses the position when it points into the
-- library (the user's script keeps its file:line) and its traceback; a
-- table without __tostring says what it is instead of `table: 0x…`.
local function describe(e)
  if errors.is(e) then return (tostring(e):gsub("^gigstack ", "")) end
  if type(e) == "table" then
    local mt = getmetatable(e)
    if mt and mt.__tostring then return (tostring(e):match("^[^\n]*")) end
    if type(e.message) == "string" then return e.message end
    local ok, text = pcall(json.encode, e)
    return "error object " .. (ok and text or "(a table)")
  end
  local s = tostring(e):gsub("\nstack traceback:.*$", "")
  s = s:gsub("^[^\n]-/lua/gigstack/[%w_/]+%.lua:%d+: ", "")
  return s
end

--- (scrubbed of every known key, whatever the error's shape)
function M.describe(e)
  return errors.scrub(describe(e))
end

--- Log a failure as one line: the described error, and its traceback
-- in JSON mode (one JSON line) or with debug on.
function M.failure(name, err, traceback, fields)
  local f = {}
  for k, v in pairs(fields or {}) do f[k] = v end
  f.error = M.describe(err)
  if errors.is(err) then f.kind, f.status, f.request_id = err.kind, err.status, err.request_id end
  if traceback and (M.debug or M.resolve() == "json") then f.traceback = traceback end
  M.event(name, f, "error")
end

--- log.event("schedule.skipped", {job = "...", reason = "..."}, "warn")
function M.event(name, fields, level)
  fields = fields or {}
  level = level or "info"
  M.resolve()
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
    local tb
    for _, k in ipairs(keys) do
      if k == "traceback" then tb = fields[k]
      else parts[#parts + 1] = k .. "=" .. redact(text_of(fields[k])) end
    end
    line = table.concat(parts, " ")
    if tb then line = line .. "\n" .. redact(tostring(tb)) end   -- debug only
  end
  M.lines[#M.lines + 1] = line
  if #M.lines > 1000 then table.remove(M.lines, 1) end
  M.out:write(line, "\n")
  M.out:flush()
end

return M
