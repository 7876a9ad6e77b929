--- The API client: base URL, key, default team, timeouts, a per-client
-- concurrency limit, the wire format (Bearer auth, JSON, team in the
-- query) and the mapping of responses to data or error values.
local http = require "gigstack.http"
local json = require "gigstack.json"
local errors = require "gigstack.errors"
local sched = require "gigstack.sched"

local M = {}

M.VERSION = "0.1.0"
M.DEFAULT_BASE_URL = "https://api.gigstack.io/v2"
--- Set by gigstack-run --mock so gigstack.new{} finds the emulator.
M.defaults = {}

local secrets = setmetatable({}, { __mode = "k" })   -- client -> api key

local Client = {}
Client.__index = Client
Client.__name = "gigstack.Client"

function Client.__tostring(c)
  return string.format("gigstack.Client(%s%s)", c.base_url,
    c.team and (", team " .. c.team) or "")
end

local function check_number(opts, field, min)
  local v = opts[field]
  if v ~= nil and (type(v) ~= "number" or v < min) then
    error(string.format("gigstack.new: %s must be a number >= %g", field, min), 3)
  end
  return v
end

function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("gigstack.new: options must be a table", 2) end
  local key = opts.api_key or os.getenv("GIGSTACK_API_KEY") or M.defaults.api_key
  if type(key) ~= "string" or key == "" then
    error("gigstack.new: api_key is required (pass api_key or set GIGSTACK_API_KEY)", 2)
  end
  local base = opts.base_url or os.getenv("GIGSTACK_BASE_URL")
    or M.defaults.base_url or M.DEFAULT_BASE_URL
  if type(base) ~= "string" or not base:match("^https?://") then
    error("gigstack.new: base_url must start with http:// or https://", 2)
  end
  local c = setmetatable({
    base_url = base:gsub("/+$", ""),
    team = opts.team,
    timeout = check_number(opts, "timeout", 0) or 30,
    connect_timeout = check_number(opts, "connect_timeout", 0) or 10,
    concurrency = check_number(opts, "concurrency", 1) or 16,
    validate = opts.validate ~= false,   -- check payloads before sending
    inflight = 0,
    slot_waiters = {},
  }, Client)
  secrets[c] = key
  return c
end

-- A task-aware semaphore: at most c.concurrency requests in flight.
local function acquire(c)
  while c.inflight >= c.concurrency do
    local task = sched.current()
    if not task then break end      -- main thread: nothing to yield to
    local co = coroutine.running()
    c.slot_waiters[#c.slot_waiters + 1] = co
    coroutine.yield()
  end
  c.inflight = c.inflight + 1
end

local function release(c)
  c.inflight = c.inflight - 1
  local co = table.remove(c.slot_waiters, 1)
  if co then sched.wake(co) end
end

-- Error body shapes, newer `{message, error: "code"}` and older
-- `{error: {code, message, details}, message}`.
local function api_error(status, body, resp, method, path)
  local code, message, details
  if type(body) == "table" then
    local e = body.error
    if type(e) == "table" then
      code, message, details = e.code, e.message, e.details
    elseif type(e) == "string" then
      code = e
    end
    message = body.message or message
    details = details or body.details
  end
  if not message then
    local text = resp.body or ""
    message = text ~= "" and text:sub(1, 200) or ("HTTP " .. status)
  end
  return errors.new{
    kind = errors.kind_for_status(status), status = status, code = code,
    message = message, details = details, method = method, path = path,
    request_id = resp.headers["x-request-id"],
  }
end

--- c:request(method, path, {query, body, team, timeout}) ->
-- envelope (decoded JSON table) | nil, error value
function Client:request(method, path, opts)
  opts = opts or {}
  local query = {}
  for k, v in pairs(opts.query or {}) do query[k] = v end
  local team = opts.team or self.team
  if team then query.team = team end        -- team always in the query
  local qs = http.encode_query(query)
  local url = self.base_url .. path .. (qs ~= "" and ("?" .. qs) or "")
  local body
  if opts.body ~= nil then
    local err
    body, err = json.encode(opts.body)
    if not body then
      return nil, errors.new{ kind = "invalid", message = "request body: " .. err,
        method = method, path = path }
    end
  end
  acquire(self)
  local ok, resp, err = pcall(http.request, {
    method = method, url = url, body = body,
    timeout = opts.timeout or self.timeout,
    connect_timeout = self.connect_timeout,
    headers = {
      ["Authorization"] = "Bearer " .. secrets[self],
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["User-Agent"] = "gigstack-lua/" .. M.VERSION,
    },
  })
  release(self)
  if not ok then error(resp, 0) end
  if not resp then
    err.method, err.path = method, path
    return nil, err
  end
  local decoded, derr = nil, nil
  if resp.body ~= "" then decoded, derr = json.decode(resp.body) end
  if resp.status >= 400 then
    return nil, api_error(resp.status, decoded, resp, method, path)
  end
  if derr or (resp.body ~= "" and type(decoded) ~= "table") then
    return nil, errors.new{ kind = "decode", status = resp.status,
      message = "response is not a JSON object: " .. tostring(derr or resp.body:sub(1, 80)),
      method = method, path = path, request_id = resp.headers["x-request-id"] }
  end
  return decoded or {}
end

--- The `data` of a single-object response, or nil, err.
function Client:call(method, path, opts)
  local env, err = self:request(method, path, opts)
  if not env then return nil, err end
  if env.data == nil or env.data == json.null then return env end
  return env.data, nil, env
end

M.Client = Client
return M
