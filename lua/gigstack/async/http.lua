--- HTTP client and server over gigstack.core, in task style: a call
-- suspends only the calling task.
local core = require "gigstack.core"
local sched = require "gigstack.async.sched"
local errors = require "gigstack.async.errors"

local M = {}

-- curl error codes worth their own kind
local curl_kinds = {
  [6] = "dns", [7] = "connect", [28] = "timeout", [35] = "tls",
  [52] = "network", [55] = "network", [56] = "network", [60] = "tls",
  [23] = "too_large", [18] = "network",
}

local function parse_headers(raw, h)
  h = h or {}
  for line in raw:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      h[name] = h[name] and (h[name] .. ", " .. value) or value
    end
  end
  return h
end

-- Response headers are parsed on first use: most callers read only the
-- request id, which the core picks out of the raw block itself.
local RAW = {}
local LazyHeaders = {}
local function unpack_headers(t)
  local raw = rawget(t, RAW)
  if raw then
    t[RAW] = nil
    setmetatable(t, nil)
    parse_headers(raw, t)
  end
end
LazyHeaders.__index = function(t, k)
  unpack_headers(t)
  return rawget(t, k)
end
LazyHeaders.__pairs = function(t)
  unpack_headers(t)
  return next, t, nil
end

local Handle = {}
Handle.__index = Handle
Handle.__name = "gigstack.RequestHandle"

--- Cancel a request still in flight (also what `<close>` does).
function Handle:cancel()
  if self.done then return false end
  self.done = true
  sched.forget(self.token)
  local ok, stopped = pcall(core.cancel, self.token)   -- the core may be shut down
  return ok and stopped
end
Handle.__close = Handle.cancel
Handle.__gc = Handle.cancel
-- M.request's handle never escapes: it needs no finalizer (a table with
-- __gc costs the collector extra work on every request)
local InnerHandle = { __index = Handle, __close = Handle.cancel, __name = Handle.__name }

local function result(ev)
  if ev.error ~= 0 then
    return nil, errors.new{
      kind = curl_kinds[ev.error] or "network", status = 0,
      code = "curl_" .. ev.error, message = ev.message, elapsed = ev.elapsed,
      sent = ev.sent, attempts = ev.attempts, deadline = ev.deadline_hit or nil,
    }
  end
  return {
    status = ev.status, headers = setmetatable({ [RAW] = ev.headers }, LazyHeaders), body = ev.body,
    request_id = ev.request_id,
    elapsed = ev.elapsed, new_connections = ev.new_connections,
    attempts = ev.attempts, sent = ev.sent, deadline_hit = ev.deadline_hit,
    retry_after = ev.retry_after,
  }
end

--- Wait for the handle's response; returns as M.request does.
function Handle:wait()
  if self.done then
    return nil, errors.new{ kind = "cancelled", message = "request was cancelled" }
  end
  local ev
  if getmetatable(self) == InnerHandle and sched.current() then
    -- M.request's own handle, in a task: if the wait raises, the handle's
    -- <close> cancels it, so no pcall, whose C frame would hold 20 more
    -- stack slots in every waiting coroutine. A handle of M.start has no
    -- such guard: a wait that raises (e.g. inside a C call, which cannot
    -- yield) must cancel it here, or the request would still go out.
    ev = sched.await(self.token)
  else
    local ok
    ok, ev = pcall(sched.await, self.token)
    if not ok then
      self:cancel()
      error(ev, 0)
    end
  end
  self.done = true
  return result(ev)
end

--- Start a request without waiting: `local h <close> = http.start{...}`;
-- h:wait() gets the response; leaving the scope cancels it if pending.
-- spec: method, url, headers = {name = value}, body, timeout (per
-- attempt), connect_timeout, deadline (all attempts and sleeps),
-- retries, backoff_base, backoff_cap, max_retry_after (seconds),
-- idempotent (may be resent when the outcome is unknown), parts (a
-- multipart/form-data body instead of `body`: {{name, filename, type,
-- path | data}}; a `path` is streamed from disk while it is sent).
-- spec.header_lines ({"Name: value", ...}) is taken as is instead.
local request_args = {}
local function start(spec, mt)
  local lines = spec.header_lines
  if not lines then
    lines = {}
    for name, value in pairs(spec.headers or {}) do
      lines[#lines + 1] = name .. ": " .. tostring(value)
    end
    table.sort(lines)
  end
  -- core.request copies what it reads and cannot yield: one table serves
  -- every call (a fresh one was ~800 bytes of garbage per request), each
  -- field assigned each time; the body is not kept past the call
  local a = request_args
  a.method, a.url, a.headers, a.body = spec.method or "GET", spec.url, lines, spec.body
  a.timeout, a.connect_timeout, a.deadline = spec.timeout, spec.connect_timeout, spec.deadline
  a.retries, a.idempotent = spec.retries or 0, spec.idempotent
  a.backoff_base, a.backoff_cap, a.max_retry_after = spec.backoff_base, spec.backoff_cap, spec.max_retry_after
  a.max_response, a.ca_file, a.fresh_connect, a.parts = spec.max_response, spec.ca_file, spec.fresh_connect, spec.parts
  local token, why = core.request(a)
  a.headers, a.body, a.parts = nil, nil, nil
  if not token then
    return nil, errors.new{ kind = "invalid", message = why }
  end
  return setmetatable({ token = token, done = false }, mt)
end

function M.start(spec)
  return start(spec, Handle)
end

--- request(spec) -> response {status, headers, body, elapsed,
-- new_connections, attempts} | nil, error value (kind network/timeout/...).
-- Retries only when spec.retries > 0 (default 0 at this level).
function M.request(spec)
  local h <close>, err = start(spec, InnerHandle)   -- cancelled if the task ends while it waits
  if not h then return nil, err end
  spec = nil   -- luacheck: ignore 311 (copied into the core: not held while this task waits)
  return h:wait()
end

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.parse_query(q)
  local t = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[unescape(k)] = unescape(v)
  end
  return t
end

function M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- Encode a table as a query string, keys sorted.
function M.encode_query(t)
  local keys = {}
  for k, v in pairs(t) do
    if v ~= nil then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = M.escape(k) .. "=" .. M.escape(t[k])
  end
  return table.concat(parts, "&")
end

local function header_lines(headers)
  local lines = {}
  for name, value in pairs(headers or {}) do
    lines[#lines + 1] = name .. ": " .. tostring(value)
  end
  table.sort(lines)
  return lines
end

-- A request's methods, shared by every request (they were two closures
-- made per request).
local Request = {}
Request.__index = Request

function Request:respond(status, headers, body, send_len)
  if self.answered then return false end
  self.answered = true
  return self.handle:respond(status, header_lines(headers), body or "", send_len)
end

function Request:abort()
  if self.answered then return end
  self.answered = true
  self.handle:abort()
end

--- listen{host, port, handler, max_body, max_header, idle_timeout, on_error,
-- and the other core.listen limits: max_headers, max_connections,
-- max_response, header_timeout, body_timeout, write_timeout}
-- -> server {port, url, close, stats} | nil, message. handler(req) runs
-- as a task per request and returns status, headers, body (or calls
-- req:respond / req:abort itself). A handler that raises, or answers with
-- a header holding CR/LF/NUL, gets the client a 500 and calls
-- on_error(message) (default: a line on stderr).
function M.listen(opts)
  local srv, token = core.listen(opts)
  if not srv then return nil, token end
  local handler = opts.handler
  local on_error = opts.on_error or function(msg)
    io.stderr:write("gigstack: HTTP handler failed: ", msg, "\n")
  end
  local server = { port = srv:port(), host = opts.host or "127.0.0.1" }
  server.url = "http://" .. server.host .. ":" .. server.port

  sched.add_server(token, function(ev)
    local path, query = ev.target:match("^([^?]*)%??(.*)$")
    local req = setmetatable({
      method = ev.method, target = ev.target, path = path,
      query = M.parse_query(query), headers = ev.headers, body = ev.body,
      peer = ev.peer, answered = false, handle = ev.handle,
    }, Request)
    local ok, status, headers, body = xpcall(handler, debug.traceback, req)
    if not ok then
      on_error(tostring(status))
      req:respond(500, { ["Content-Type"] = "application/json" },
        '{"message":"internal error in handler","error":"internal_server_error"}')
    elseif not req.answered then
      local sent, why = req:respond(status or 204, headers, body)
      if sent == nil and why then on_error(why) end
    end
  end)

  --- counters from the C server: connections, accepted, evicted, refused,
  -- header_timeouts, body_timeouts, write_timeouts, idle_closed
  function server.stats() return srv:stats() end

  function server.close()
    if server.closed then return end
    server.closed = true
    sched.remove_server(token)
    srv:close()
  end
  return server
end

return M
