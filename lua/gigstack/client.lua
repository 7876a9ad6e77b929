--- The API client: base URL, key, default team, timeouts, a per-client
-- concurrency limit, the wire format (Bearer auth, JSON, team in the
-- query) and the mapping of responses to data or error values.
local http = require "gigstack.async.http"
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"
local sched = require "gigstack.async.sched"

local core = require "gigstack.core"

local M = {}

-- One version source: GS_VERSION in include/gigstack.h, through the C core.
M.VERSION = core.version
M.DEFAULT_BASE_URL = "https://api.gigstack.io/v2"
--- Options every new client inherits when the caller leaves them out. A
-- host such as gigstack-run fills them: `base_url` and `api_key` of its
-- emulator, and two hooks, `stopping()` (returns a reason once no new
-- request may start) and `dry_run(method, path, body)` (called for each
-- write that is not sent).
-- `pinned = true` makes the host's base_url and api_key beat the
-- environment (the emulator of `--mock` must not get a real key), and
-- `profile` picks the credentials.json profile (--profile).
M.defaults = {}

local secrets = setmetatable({}, { __mode = "k" })   -- client -> api key
local base_lines = setmetatable({}, { __mode = "k" })   -- client -> its header lines (they hold the key)

local Client = {}
Client.__index = Client
Client.__name = "gigstack.Client"

function Client.__tostring(c)
  return string.format("gigstack.Client(%s%s)", c.base_url,
    c.team and (", team " .. c.team) or "")
end

--- True when the URL's host is this machine (127.0.0.0/8, ::1, localhost).
function M.is_loopback(url)
  local host = url:match("^%a+://%[([^%]]+)%]") or url:match("^%a+://([^/:?#]+)") or ""
  host = host:lower()
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- A configuration problem (no key, bad option, unreadable credentials):
-- an error value of kind "config", so a host can tell it from a failed
-- request (gigstack-run exits 2 for it).
local function config_error(msg)
  error(errors.new{ kind = "config", status = 0, message = msg }, 3)
end

local function check_number(opts, field, min)
  local v = opts[field]
  if v ~= nil and (type(v) ~= "number" or v < min) then
    config_error(string.format("gigstack.new: %s must be a number >= %g", field, min))
  end
  return v
end

--- Where the official gigstack CLI keeps its keys (written by its
-- `login`): $XDG_CONFIG_HOME/gigstack/credentials.json, else
-- ~/.config/gigstack/credentials.json.
function M.credentials_path()
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/gigstack/credentials.json" end
  local home = os.getenv("HOME")
  if not home or home == "" then return nil end
  return home .. "/.config/gigstack/credentials.json"
end

--- The key of a profile in the CLI's credentials file:
-- {"profiles": {NAME: {"apiKey", "environment"}}, "activeProfile": NAME}.
-- Returns key, profile, environment; nil when there is no file; raises a
-- config error when the file is unsafe (readable by group or others),
-- unreadable, malformed, or has no such profile. The SDK reads it
-- itself: it is SDK configuration like GIGSTACK_API_KEY, so plain-Lua
-- users get it too, not only gigstack-run.
function M.credentials(profile, path)
  path = path or M.credentials_path()
  if not path then return nil end
  local f = io.open(path, "rb")
  if not f then return nil end
  local mode = core.file_mode(path)
  if mode and mode & 0x3F ~= 0 then   -- any group/other bit (0077)
    f:close()
    config_error(string.format("gigstack.new: refusing %s: it is readable by other users "
      .. "(mode %04o); run `chmod 600 %s`", path, mode, path))
  end
  local text = f:read("a")
  f:close()
  local data = json.decode(text or "")
  if type(data) ~= "table" or type(data.profiles) ~= "table" then
    config_error("gigstack.new: " .. path .. ": expected {\"profiles\": {NAME: {\"apiKey\": …}}, "
      .. "\"activeProfile\": NAME}")
  end
  local name = profile or data.activeProfile
  if type(name) ~= "string" then
    local names = {}
    for k in pairs(data.profiles) do names[#names + 1] = tostring(k) end
    if #names ~= 1 then
      table.sort(names)
      config_error("gigstack.new: " .. path .. " has no activeProfile; choose one with --profile or "
        .. "GIGSTACK_PROFILE (" .. (#names > 0 and table.concat(names, ", ") or "no profiles") .. ")")
    end
    name = names[1]
  end
  local entry = data.profiles[name]
  if type(entry) ~= "table" then
    local names = {}
    for k in pairs(data.profiles) do names[#names + 1] = tostring(k) end
    table.sort(names)
    config_error(string.format("gigstack.new: profile %q is not in %s (profiles: %s)", name, path,
      #names > 0 and table.concat(names, ", ") or "none"))
  end
  local key = entry.apiKey or entry.api_key
  if type(key) ~= "string" or key == "" then
    config_error(string.format("gigstack.new: profile %q in %s has no apiKey", name, path))
  end
  return key, name, type(entry.environment) == "string" and entry.environment or nil
end

-- The key, in this order: opts.api_key; the host's key when it pins it
-- (gigstack-run --mock: its emulator's key beats the environment);
-- $GIGSTACK_API_KEY; the CLI's credentials.json (opts.profile,
-- defaults.profile (--profile), $GIGSTACK_PROFILE, or its activeProfile);
-- the host's.
local function find_key(opts)
  if opts.api_key ~= nil then return opts.api_key, "api_key" end
  local d = M.defaults
  if d.pinned and d.api_key then return d.api_key, "host" end
  -- a host may have taken the variable out of the environment (so child
  -- processes do not inherit the key) and handed it over as env_api_key
  local env = os.getenv("GIGSTACK_API_KEY") or d.env_api_key
  if env and env ~= "" then return env, "GIGSTACK_API_KEY" end
  local profile = opts.profile or d.profile or os.getenv("GIGSTACK_PROFILE")
  if profile == "" then profile = nil end
  local key, name, environment = M.credentials(profile)
  if key then return key, "credentials.json profile " .. name, environment end
  if profile then
    config_error("gigstack.new: profile " .. profile .. " asked for, but "
      .. (M.credentials_path() or "~/.config/gigstack/credentials.json") .. " does not exist")
  end
  if d.api_key then return d.api_key, "host" end
  return nil
end

function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then config_error("gigstack.new: options must be a table") end
  local key, key_source, environment = find_key(opts)
  if type(key) ~= "string" or key == "" then
    config_error("gigstack.new: api_key is required (pass api_key, set GIGSTACK_API_KEY, "
      .. "or log in with the gigstack CLI: ~/.config/gigstack/credentials.json)")
  end
  local base = opts.base_url or (M.defaults.pinned and M.defaults.base_url) or os.getenv("GIGSTACK_BASE_URL")
    or M.defaults.base_url or M.DEFAULT_BASE_URL
  if type(base) ~= "string" or not base:match("^https?://") then
    config_error("gigstack.new: base_url must start with http:// or https://")
  end
  if base:match("^http://") and not opts.allow_http and not M.is_loopback(base) then
    config_error("gigstack.new: base_url: http:// sends the API key in clear to " .. base
      .. "; use https:// (or allow_http = true for a trusted network)")
  end
  errors.add_secret(key)
  local c = setmetatable({
    base_url = base:gsub("/+$", ""),
    team = opts.team,
    timeout = check_number(opts, "timeout", 0) or 30,
    connect_timeout = check_number(opts, "connect_timeout", 0) or 10,
    concurrency = check_number(opts, "concurrency", 1) or 16,
    validate = opts.validate ~= false,   -- check payloads before sending
    key_source = key_source,             -- where the key came from (never the key)
    environment = environment,           -- the CLI profile's "environment", when from there
    stopping = opts.stopping or M.defaults.stopping,
    dry_run = opts.dry_run or M.defaults.dry_run,
    retries = check_number(opts, "retries", 0) or 2,   -- an integer, checked below
    deadline = check_number(opts, "deadline", 0) or 120,
    backoff_base = check_number(opts, "backoff_base", 0.001),
    backoff_cap = check_number(opts, "backoff_cap", 0.001),
    max_retry_after = check_number(opts, "max_retry_after", 0.001),
    max_response = check_number(opts, "max_response", 1),
    ca_file = opts.ca_file,
    inflight = 0,
    slot_queue = { head = 1, tail = 0 },
    slot_waiting = {},
  }, Client)
  if math.type(c.retries) ~= "integer" or c.retries > 31 then
    config_error("gigstack.new: retries must be an integer from 0 to 31")
  end
  if opts.rate_limit ~= nil then
    local rl = opts.rate_limit
    if type(rl) ~= "table" or type(rl.per_second) ~= "number" or rl.per_second <= 0 then
      config_error("gigstack.new: rate_limit must be {per_second = n > 0, burst = n >= 1}")
    end
    c.bucket = { rate = rl.per_second, burst = math.max(1, rl.burst or rl.per_second),
      tokens = math.max(1, rl.burst or rl.per_second), at = core.now() }
  end
  -- the engine keeps at least as many transfers on the wire as any client
  -- may have in flight (its default is 256 per process)
  if c.concurrency > core.max_inflight() then core.max_inflight(math.min(65536, c.concurrency // 1)) end
  secrets[c] = key
  base_lines[c] = { "Accept: application/json", "Authorization: Bearer " .. key,
    "Content-Type: application/json", "User-Agent: gigstack-lua/" .. M.VERSION }
  return c
end

-- Token bucket: wait until a request may start (opt-in rate_limit).
local function take_token(c)
  local b = c.bucket
  if not b then return end
  while true do
    local now = core.now()
    b.tokens = math.min(b.burst, b.tokens + (now - b.at) / 1000 * b.rate)
    b.at = now
    if b.tokens >= 1 then b.tokens = b.tokens - 1; return end
    sched.sleep((1 - b.tokens) / b.rate)
  end
end

-- A task-aware semaphore: at most c.concurrency requests in flight, O(1)
-- per call. Waiting tasks queue in FIFO order; a released slot is handed
-- straight to the next waiter. acquire returns the client itself as the
-- to-be-closed value (Client.__close gives the slot back), so the common
-- path allocates nothing; leaving the scope by cancellation or error gives
-- it back too, so no slot is ever lost.
local function release(c)
  local q, waiting = c.slot_queue, c.slot_waiting
  while q.head <= q.tail do
    local co = q[q.head]
    q[q.head] = nil
    q.head = q.head + 1
    if waiting[co] == "queued" then      -- (an entry left by a cancelled waiter is skipped)
      waiting[co] = "granted"
      sched.wake(co)
      return
    end
  end
  c.inflight = c.inflight - 1
end

Client.__close = release

local Wait = {}
Wait.__close = function(w)
  if w.done then return end
  -- the task was cancelled while it waited: give back a slot it was handed
  local c, co = w.c, w.co
  local state = c.slot_waiting[co]
  c.slot_waiting[co] = nil
  if state == "granted" then release(c) end
end

local function acquire(c)
  if c.inflight < c.concurrency or not sched.current() then
    c.inflight = c.inflight + 1
    return c
  end
  local co = coroutine.running()
  local q = c.slot_queue
  q.tail = q.tail + 1
  q[q.tail] = co
  c.slot_waiting[co] = "queued"
  local w <close> = setmetatable({ c = c, co = co }, Wait)
  while c.slot_waiting[co] == "queued" do coroutine.yield() end
  c.slot_waiting[co] = nil
  w.done = true
  return c
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
  if message ~= nil and type(message) ~= "string" then message = json.encode(message) or tostring(message) end
  if code ~= nil and type(code) ~= "string" and type(code) ~= "number" then
    code = json.encode(code) or "?"   -- a structured code prints as JSON, never as table: 0x…
  end
  if not message then
    local text = resp.body or ""
    message = text ~= "" and text:sub(1, 200) or ("HTTP " .. status)
  end
  return errors.new{
    kind = errors.kind_for_status(status), status = status, code = code,
    message = message, details = details, method = method, path = path,
    request_id = resp.request_id,
  }
end

-- The client's own header lines are built once; a call with its own
-- headers, a key or a multipart body gets a copy.
local function header_lines(c, key, opts)
  if key == nil and not opts.headers and not opts.parts then return base_lines[c] end
  local headers = {
    ["Authorization"] = "Bearer " .. secrets[c],
    -- a multipart body (opts.parts) gets curl's own type with its boundary
    ["Content-Type"] = not opts.parts and "application/json" or nil,
    ["Accept"] = "application/json",
    ["User-Agent"] = "gigstack-lua/" .. M.VERSION,
  }
  if key ~= nil then headers["Idempotency-Key"] = key end
  for name, value in pairs(opts.headers or {}) do headers[name] = value end
  local lines = {}
  for name, value in pairs(headers) do lines[#lines + 1] = name .. ": " .. tostring(value) end
  table.sort(lines)
  return lines
end

--- c:request(method, path, {query, body, team, headers, timeout,
-- deadline, retries, backoff_base, backoff_cap, max_retry_after,
-- idempotency_key, parts}) -> envelope, nil, meta | nil,
-- error value. GETs and requests with an idempotency key (header and
-- body field) may be retried after an unknown outcome; others are not.
function Client:request(method, path, opts)
  opts = opts or {}
  local team = opts.team or self.team
  local url = self.base_url .. path
  if opts.query or team then
    local query = {}
    for k, v in pairs(opts.query or {}) do query[k] = v end
    if team then query.team = team end        -- team always in the query
    local qs = http.encode_query(query)
    if qs ~= "" then url = url .. "?" .. qs end
  end
  local body
  if opts.body ~= nil then
    local err
    body, err = json.encode(opts.body)
    if not body then
      return nil, errors.new{ kind = "invalid", message = "request body: " .. err,
        method = method, path = path }
    end
  end
  local stop = self.stopping and self.stopping()
  if stop then
    return nil, errors.new{ kind = "cancelled", method = method, path = path,
      message = "not started: the runner is stopping (" .. stop .. ")" }
  end
  local key = opts.idempotency_key
  if key == nil and type(opts.body) == "table" then key = opts.body.idempotency_key end
  if self.dry_run and method ~= "GET" and method ~= "HEAD" then
    -- dry run: reads go through, writes go to the hook and are never sent
    self.dry_runs = (self.dry_runs or 0) + 1
    if type(self.dry_run) == "function" then self.dry_run(method, path, body or "") end
    return { message = "dry run: not sent", data = { id = "dry_run_" .. self.dry_runs, dry_run = true,
      method = method, path = path } }, nil, { status = 0, attempts = {}, idempotency_key = key }
  end
  local idempotent = method == "GET" or method == "HEAD" or key ~= nil
  if opts.headers then
    for name in pairs(opts.headers) do
      if name:lower() == "authorization" then
        error("client:request: the Authorization header comes from the client's api_key", 2)
      end
    end
  end
  local _ <close> = acquire(self)
  stop = self.stopping and self.stopping()
  if stop then   -- the signal came while this call waited for a slot
    return nil, errors.new{ kind = "cancelled", method = method, path = path,
      message = "not started: the runner is stopping (" .. stop .. ")" }
  end
  take_token(self)
  local resp, err = http.request{
    -- the lines are built here, not in a local: this frame would hold
    -- them (and their strings) while the task waits
    method = method, url = url, body = body, header_lines = header_lines(self, key, opts),
    timeout = opts.timeout or self.timeout, connect_timeout = self.connect_timeout,
    deadline = opts.deadline or self.deadline, retries = opts.retries or self.retries,
    idempotent = idempotent, backoff_base = opts.backoff_base or self.backoff_base,
    backoff_cap = opts.backoff_cap or self.backoff_cap,
    max_retry_after = opts.max_retry_after or self.max_retry_after, max_response = self.max_response,
    ca_file = self.ca_file, parts = opts.parts,
    fresh_connect = not idempotent,   -- see gs_request_spec.fresh_connect
  }
  return M.response(resp, err, method, path, key)
end

--- Turn an HTTP response (or transport error) into envelope, nil, meta
-- or nil, error value. Never raises, whatever the bytes.
function M.response(resp, err, method, path, key)
  if not resp then
    err.method, err.path, err.idempotency_key = method, path, key
    if err.sent == "unknown" and key == nil and method ~= "GET" and method ~= "HEAD" then
      err.kind = "outcome_unknown"
      err.message = err.message .. "; the request may have reached gigstack and was not "
        .. "retried because it carries no idempotency key: check before repeating it"
    elseif err.deadline then
      err.kind = "timeout"
      err.message = err.message .. " (deadline reached after " .. #(err.attempts or {}) .. " attempts)"
    end
    return nil, err
  end
  local meta = { status = resp.status, attempts = resp.attempts, request_id = resp.request_id,
    idempotency_key = key }
  local decoded, derr = nil, nil
  if resp.body ~= "" then
    if not core.utf8_valid(resp.body) then
      derr = "response body is not valid UTF-8"
    else
      decoded, derr = json.decode(resp.body)
    end
  end
  if resp.status < 200 or (resp.status >= 300 and resp.status < 400) then
    -- only 2xx is success: a redirect is never followed (it would carry the
    -- key elsewhere) and never taken for a result
    local location = resp.headers.location
    return nil, errors.new{ kind = resp.status >= 300 and "redirect" or "protocol", status = resp.status,
      location = location, method = method, path = path, request_id = meta.request_id,
      attempts = resp.attempts, idempotency_key = key,
      message = resp.status >= 300
        and ("HTTP " .. resp.status .. " redirect to " .. tostring(location) .. " not followed; "
          .. "check base_url (https://, no trailing path)")
        or ("unexpected HTTP " .. resp.status .. " as a final answer") }
  end
  if resp.status >= 400 then
    local e = api_error(resp.status, decoded, resp, method, path)
    e.attempts, e.idempotency_key, e.retry_after = resp.attempts, key, resp.retry_after
    if resp.deadline_hit then e.message = e.message .. " (deadline reached before the next retry)" end
    return nil, e
  end
  if derr or (resp.body ~= "" and type(decoded) ~= "table") then
    return nil, errors.new{ kind = "decode", status = resp.status,
      message = "response is not a JSON object: " .. tostring(derr or resp.body:sub(1, 80)),
      method = method, path = path, request_id = meta.request_id, attempts = resp.attempts,
      idempotency_key = key }
  end
  return decoded or {}, nil, meta
end

--- The `data` of a single-object response, or nil, err; the third
-- value is {status, attempts, request_id, idempotency_key, envelope}.
function Client:call(method, path, opts)
  local env, err, meta = self:request(method, path, opts)
  if not env then return nil, err end
  meta.envelope = env
  if env.data == nil or env.data == json.null then return env, nil, meta end
  return env.data, nil, meta
end

-- base64url (padding and the + / alphabet tolerated), nil when not.
local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  return (core.base64_decode(s .. string.rep("=", (4 - #s % 4) % 4)))
end

--- The claims of a JWT-shaped API key (live keys are JWTs: `team`,
-- `livemode`, `key_id`), read without verifying; {} for other keys
-- (sk_test_*). The key itself is never returned.
function Client:key_claims()
  local payload = secrets[self]:match("^[%w%-_]+%.([%w%-_]+)%.[%w%-_]*$")
  local text = payload and b64url_decode(payload)
  local claims = text and json.decode(text)
  if type(claims) ~= "table" then return {} end
  local out = {}
  for _, k in ipairs{ "team", "livemode", "key_id" } do
    if claims[k] ~= nil and claims[k] ~= json.null then out[k] = claims[k] end
  end
  return out
end

M.Client = Client
return M
