--- The gigstack API emulator: stateful, in-memory, both documentation
-- generations. mock.new() gives an emulator whose :handle(req) answers
-- one request; mock.start() serves it over HTTP on loopback.
local json = require "gigstack.async.json"
local http = require "gigstack.async.http"
local sched = require "gigstack.async.sched"
local store = require "gigstack.mock.store"
local wire = require "gigstack.mock.wire"
local faults = require "gigstack.mock.faults"

local M = {}

M.DEFAULT_KEY = "sk_test_mock"

local Emulator = {}
Emulator.__index = Emulator

local RESOURCES = { "clients", "services", "payments", "invoices", "receipts", "teams", "users",
  "webhooks", "misc" }

-- The resource modules never require each other: a handler reaches a
-- sibling's operations (issue an invoice, find a client) through
-- ctx.peers, filled here, the emulator's one composition point.
local peers = {}
for _, name in ipairs(RESOURCES) do peers[name] = require("gigstack.mock." .. name) end

function M.new(opts)
  opts = opts or {}
  local injector, ferr = faults.new{ rates = opts.faults, seed = opts.fault_seed,
    retry_after = opts.retry_after, stall = opts.stall }
  if not injector then error("mock: " .. ferr, 2) end
  local seed = opts.seed
  if opts.examples then
    seed = seed or store.default_seed()
    seed.examples = true
  end
  if opts.state_file then
    local f = io.open(opts.state_file, "rb")
    if f then
      local text = f:read("a")
      f:close()
      local snapshot, jerr = json.decode(text)
      if type(snapshot) ~= "table" then
        error("mock: cannot read state " .. opts.state_file .. ": " .. tostring(jerr), 2)
      end
      seed = snapshot
    end
  end
  local e = setmetatable({
    state_file = opts.state_file,
    store = store.new(seed, opts.rng_seed),
    routes = {},
    latency = opts.latency,            -- {min, max} in seconds
    faults = injector,
    requests = 0,
    delivery_attempts = opts.delivery_attempts or 5,
    delivery_backoff = opts.delivery_backoff or 0.5,
  }, Emulator)
  local function route(method, pattern, handler, flags)
    e.routes[#e.routes + 1] = { method = method, pattern = pattern, handler = handler,
      older = flags and flags.older }
  end
  for _, name in ipairs(RESOURCES) do peers[name].routes(route) end
  return e
end

-- Request context handed to route handlers.
local Ctx = {}
Ctx.__index = Ctx
Ctx.peers = peers

function Ctx:body()
  if self.decoded then return self.decoded end
  local text = self.req.body
  if text == nil or text == "" then
    wire.fail(400, "invalid_request_body", "request body must be a JSON object")
  end
  local v, err = json.decode(text)
  if type(v) ~= "table" or json.is_array(v) then
    wire.fail(400, "invalid_request_body", "request body must be a JSON object"
      .. (err and (": " .. err) or ""))
  end
  self.decoded = v
  return v
end

--- The object `id` of collection `name` in this team, or a 404 naming
-- it as `noun`.
function Ctx:find(name, id, noun)
  local obj = self.store:get(self.team, name, id)
  if not obj then wire.fail(404, "resource_not_found", noun .. " " .. id .. " not found") end
  return obj
end

--- Record a webhook event for a state change (delivered by later work;
-- tests read them at GET /v2/_mock/events).
function Ctx:event(kind, object)
  local st = self.store
  local snapshot = json.decode(assert(json.encode(object)))
  local ev = { id = st:id("evt"), type = kind, created = st:now() * 1000,
    livemode = false, team = self.team, data = { object = snapshot }, deliveries = json.array() }
  st:insert(self.team, "events", ev)
  if self.deliver then self.deliver(ev) end
end

--- POST an event to every active webhook of its team that wants it,
-- retrying with backoff (0.5, 1, 2, 4 s) until a 2xx, 5 attempts.
local function deliver(e, ev)
  local coll = e.store:coll(ev.team, "webhooks")
  for _, id in ipairs(coll.order) do
    local w = coll.items[id]
    local wants = w and w.status == "active"
    if wants and #w.events > 0 then
      wants = false
      for _, name in ipairs(w.events) do if name == ev.type then wants = true end end
    end
    if wants then
      local body = assert(json.encode({ id = ev.id, type = ev.type, event = ev.type, created = ev.created,
        livemode = false, data = ev.data }))
      local task = sched.spawn(function()
        for attempt = 1, e.delivery_attempts do
          local r = http.request{ method = "POST", url = w.url, body = body, timeout = 5,
            headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "gigstack-mock-webhooks",
              ["X-Gigstack-Event-Id"] = ev.id } }
          local ok = r and r.status >= 200 and r.status < 300
          ev.deliveries[#ev.deliveries + 1] = { webhook = w.id, attempt = attempt,
            status = r and r.status or 0, ok = ok }
          if ok then return end
          if attempt < e.delivery_attempts then sched.sleep(e.delivery_backoff * 2 ^ (attempt - 1)) end
        end
      end)
      task.daemon_set()
    end
  end
end

--- Act on another team (older docs: `team` in the payment body); the
-- same master-team and billing-account rules as the query parameter.
function Ctx:switch_team(id)
  self.team = M.resolve_team(self.store, self.key_team, id)
end

--- A list envelope over collection `name`, honouring limit (1..100,
-- default 10), next / starting_after cursors and sort=asc.
function Ctx:list(name, filter)
  local q = self.query
  local limit = 10
  if q.limit ~= nil then
    limit = math.tointeger(tonumber(q.limit))
    if not limit or limit < 1 or limit > 100 then
      wire.fail(400, "invalid_field_value", "limit: must be an integer from 1 to 100",
        { { field = "limit", message = "must be an integer from 1 to 100" } })
    end
  end
  local after = q.next or q.starting_after
  if after == "" then after = nil end
  local items, has_more, next_cursor, total = self.store:page(self.team, name, {
    limit = limit, after = after, asc = q.sort == "asc", filter = filter })
  if not items then
    wire.fail(400, "invalid_field_value", "next: unknown cursor " .. after)
  end
  return wire.list(items, has_more, next_cursor, total)
end

--- The team a request acts on: the key's own, or `team` from the query
-- (Connect) when the key's team is a master team of the same billing
-- account.
function M.resolve_team(st, own, asked)
  if asked == nil or asked == "" or asked == own then return own end
  local target = st.teams[asked]
  if not target then wire.fail(404, "resource_not_found", "team " .. asked .. " not found") end
  local mine = st.teams[own]
  if not mine.is_master_team then
    wire.fail(403, "forbidden", "team " .. own .. " is not a master team; the team parameter is not allowed")
  end
  if target.billing_account ~= mine.billing_account then
    wire.fail(403, "forbidden", "team " .. asked .. " belongs to another billing account")
  end
  return asked
end

local function find_route(e, method, path)
  local path_known = false
  for _, r in ipairs(e.routes) do
    local caps = table.pack(path:match(r.pattern))
    if caps[1] ~= nil then
      path_known = true
      if r.method == method then return r, caps end
    end
  end
  if path_known then wire.fail(405, "method_not_allowed", method .. " is not allowed on " .. path) end
  wire.fail(404, "resource_not_found", "no endpoint " .. method .. " /v2" .. path)
end

--- Answer one request {method, path, query, headers, body}; returns
-- status, body table.
function Emulator:handle(req)
  self.requests = self.requests + 1
  local older = false
  local ok, status, payload, ctype = pcall(function()
    -- invoice files: plain URLs, fetched without auth (as the CLI does)
    local file_team, uuid, ext = req.path:match("^/files/([%w_]+)/([%x%-]+)%.(%a+)$")
    if file_team and req.method == "GET" and (ext == "xml" or ext == "pdf") then
      local invoices = peers.invoices
      local ctx = setmetatable({ store = self.store, team = file_team }, Ctx)
      local inv = invoices.find(ctx, uuid)
      if ext == "xml" then return 200, invoices.xml(ctx, inv), "application/xml" end
      return 200, invoices.pdf(inv), "application/pdf"
    end
    local path = req.path:match("^/v2(/.*)$")
    if not path then wire.fail(404, "resource_not_found", "the API lives under /v2") end
    local route, caps = find_route(self, req.method, path)
    older = route.older
    local auth = req.headers.authorization or ""
    local key = auth:match("^[Bb]earer%s+(%S+)$")
    local own = key and self.store.keys[key]
    if not own then
      wire.fail(401, "unauthorized", key and "invalid API key"
        or "missing Authorization: Bearer <api key> header")
    end
    local team = M.resolve_team(self.store, own, req.query.team)
    local ctx = setmetatable({ req = req, query = req.query, store = self.store,
      team = team, key_team = own, base_url = "http://" .. (req.headers.host or "127.0.0.1"),
      deliver = function(ev) deliver(self, ev) end, stats = function() return self:stats() end }, Ctx)
    return route.handler(ctx, table.unpack(caps, 1, caps.n))
  end)
  if ok then return status, payload, ctype end
  if wire.is_fail(status) then return status.status, wire.error_body(status, older) end
  io.stderr:write("gigstack mock: handler error: ", tostring(status), "\n")
  return 500, { message = "internal emulator error", error = "internal_server_error" }
end

--- Write the whole state to a JSON file (gigstack-run --mock-state).
function Emulator:save(path)
  path = path or self.state_file
  local text = assert(json.encode(self.store:snapshot()))
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return os.rename(tmp, path)
end

--- Totals across teams, and the duplicates a retry bug would create:
-- payments sharing an idempotency key, invoices sharing a payment.
-- Objects in a collection, and how many repeat a value of `field`.
local function count(coll, field)
  local n, dups, seen = 0, 0, {}
  for _, obj in pairs(coll and coll.items or {}) do
    n = n + 1
    local v = obj[field]
    if v ~= nil then
      if seen[v] then dups = dups + 1 end
      seen[v] = true
    end
  end
  return n, dups
end

function Emulator:stats()
  local st = { payments = 0, invoices = 0, duplicate_keys = 0, duplicate_invoices = 0 }
  for _, colls in pairs(self.store.data) do
    local np, dk = count(colls.payments, "idempotency_key")
    local ni, di = count(colls.invoices, "payment_id")
    st.payments, st.duplicate_keys = st.payments + np, st.duplicate_keys + dk
    st.invoices, st.duplicate_invoices = st.invoices + ni, st.duplicate_invoices + di
  end
  return st
end

local function header_latency(req)
  local ms = tonumber(req.headers["x-mock-latency"] or "")
  return ms and ms / 1000 or nil
end

--- Faults that strike before the emulator acts; true when answered.
function M.fault_before(emu, req, fault, request_id)
  local json_headers = { ["Content-Type"] = "application/json", ["X-Request-Id"] = request_id }
  if fault == "reset_before" then
    req:abort()
  elseif fault == "stall" then
    sched.sleep(emu.faults.stall)
    req:abort()
  elseif fault == "429" then
    json_headers["Retry-After"] = tostring(emu.faults.retry_after)
    req:respond(429, json_headers, '{"message":"Too many requests","error":"rate_limit_exceeded"}')
  elseif fault == "html" then
    req:respond(502, { ["Content-Type"] = "text/html" },
      "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>")
  elseif fault == "empty" then
    req:respond(503, {}, "")
  elseif fault:match("^5%d%d$") then
    req:respond(tonumber(fault), json_headers,
      '{"message":"Injected server error","error":"service_unavailable"}')
  else
    return false
  end
  return true
end

--- Serve the emulator over HTTP. opts: host, port (0 = any), emulator
-- (or the mock.new options: latency {min, max} seconds, faults (rates
-- table or "429=0.05,..." string), fault_seed, retry_after, stall). Returns server
-- {url, base_url, port, api_key, emulator, close}.
function M.start(opts)
  opts = opts or {}
  local emu = opts.emulator or M.new(opts)
  local server, err = http.listen{
    host = opts.host or "127.0.0.1", port = opts.port or 0,
    max_body = opts.max_body, max_header = opts.max_header,
    handler = function(req)
      local delay = header_latency(req)
      if not delay and emu.latency then
        local lo, hi = emu.latency[1], emu.latency[2] or emu.latency[1]
        delay = lo + (hi - lo) * (emu.store:random() % 1000) / 1000
      end
      if delay and delay > 0 then sched.sleep(delay) end
      local request_id = emu.store:id("req")
      local fault = emu.faults:pick(req)
      local early = fault and M.fault_before(emu, req, fault, request_id)
      if early then return end
      local status, body, ctype = emu:handle(req)
      local text = type(body) == "string" and body or assert(json.encode(body))
      local headers = { ["Content-Type"] = ctype or "application/json", ["X-Request-Id"] = request_id }
      if fault == "reset_after" then return req:abort() end   -- acted, then lost the answer
      if fault == "truncate" then return req:respond(status, headers, text, #text // 2) end
      return status, headers, text
    end,
  }
  if not server then return nil, err end
  server.base_url = server.url .. "/v2"
  server.api_key = M.DEFAULT_KEY
  server.emulator = emu
  return server
end

return M
