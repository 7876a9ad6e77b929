--- The gigstack API emulator: stateful, in-memory, both documentation
-- generations. mock.new() gives an emulator whose :handle(req) answers
-- one request; mock.start() serves it over HTTP on loopback.
local json = require "gigstack.async.json"
local http = require "gigstack.async.http"
local sched = require "gigstack.async.sched"
local store = require "gigstack.mock.store"
local wire = require "gigstack.mock.wire"
local faults = require "gigstack.mock.faults"
local jwt = require "gigstack.mock.jwt"

local M = {}

M.DEFAULT_KEY = "sk_test_mock"
--- HS256 secret of JWT-shaped test keys (unsigned ones work too).
M.JWT_TEST_SECRET = jwt.TEST_SECRET

local Emulator = {}
Emulator.__index = Emulator

local RESOURCES = { "clients", "services", "payments", "invoices", "receipts", "teams", "users",
  "webhooks", "misc", "sat_download", "uploads" }

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
-- tests read them at GET /v2/_mock/events). Returns the object's frozen
-- JSON text (a json.raw).
function Ctx:event(kind, object)
  local st = self.store
  -- the object as it is now, frozen as its JSON text (encoded once, in C;
  -- embedded as is wherever the event is delivered, listed or saved)
  local snapshot = json.raw(assert(json.encode(object)))
  local ev = { id = st:id("evt"), type = kind, created = st:now(),
    livemode = false, team = self.team, data = { object = snapshot }, deliveries = json.array() }
  st:insert(self.team, "events", ev)
  -- delivered once the request succeeds (Emulator:route_call)
  if self.deliver then
    local box = self.outbox
    if not box then box = {}; self.outbox = box end
    box[#box + 1] = ev
  end
  return snapshot
end

--- The answer {message, data = object} whose object was frozen as
-- `frozen` (Ctx:event's text) and has not changed since: its JSON text is
-- built around that text instead of encoding the object again.
function Ctx:answer(object, frozen, message)
  local body = wire.object(object, message)
  self.answer_text = assert(json.encode({ data = frozen, message = body.message }))
  return body
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
      task:daemon_set()
    end
  end
end

--- Act on another team (older docs: `team` in the payment body); the
-- same master-team and billing-account rules as the query parameter.
function Ctx:switch_team(id)
  self.team = M.resolve_team(self.store, self.key_team, id)
end

-- Sort keys for order_by: the object's name (clients, services, teams),
-- else its client's; compared case-insensitively.
local function name_key(obj)
  local n = obj.name or obj.legal_name or obj.description
  if n == nil and type(obj.client) == "table" then n = obj.client.name or obj.client.legal_name end
  return type(n) == "string" and n:lower() or ""
end

local function bad_value(field, rule)
  wire.fail(400, "invalid_field_value", field .. ": " .. rule, { { field = field, message = rule } })
end

-- created[gte] / created[lte]: unix seconds (10 digits), inclusive.
local function created_bound(q, field)
  local v = q[field]
  if v == nil or v == "" then return nil end
  local n = v:match("^%d+$") and math.tointeger(tonumber(v))
  if not n then bad_value(field, "must be unix seconds (an integer)") end
  if n >= 100000000000 then bad_value(field, "must be unix seconds (10 digits), not milliseconds") end
  return n
end

--- A list envelope over collection `name`, honouring limit (1..100,
-- default 10), next / starting_after cursors, created[gte] /
-- created[lte] (unix seconds, inclusive), order_by (timestamp, the
-- default, or name) and sort (desc, the default, or asc; the older
-- generation's order_direction too). The cursor is the id of the last
-- item and stays valid under the same filters and order. opts: key (the
-- sort key when order_by is not name), view (maps each listed object).
function Ctx:list(name, filter, opts)
  local q = self.query
  local limit = 10
  if q.limit ~= nil then
    limit = math.tointeger(tonumber(q.limit))
    if not limit or limit < 1 or limit > 100 then
      wire.fail(400, "invalid_field_value", "limit: must be an integer from 1 to 100",
        { { field = "limit", message = "must be an integer from 1 to 100" } })
    end
  end
  local gte, lte = created_bound(q, "created[gte]"), created_bound(q, "created[lte]")
  local sort = q.sort or q.order_direction or "desc"
  if sort ~= "asc" and sort ~= "desc" then bad_value(q.sort and "sort" or "order_direction", "must be asc or desc") end
  local order_by = q.order_by or "timestamp"
  if order_by ~= "timestamp" and order_by ~= "created_at" and order_by ~= "name" then
    bad_value("order_by", "must be timestamp or name")
  end
  local matches = filter
  if gte or lte then
    matches = function(obj)
      local t = store.created_of(obj)
      return t ~= nil and (not gte or t >= gte) and (not lte or t <= lte) and (not filter or filter(obj))
    end
  end
  local after = q.next or q.starting_after
  if after == "" then after = nil end
  -- created[gte] / created[lte]: unix seconds (10 digits), inclusive
  local range = {}
  for _, op in ipairs{ "gte", "lte" } do
    local v = q["created[" .. op .. "]"]
    if v ~= nil and v ~= "" then
      range[op] = math.tointeger(tonumber(v))
      if not range[op] or not tostring(v):match("^%d+$") then
        wire.fail(400, "invalid_field_value", "created[" .. op .. "]: must be unix seconds",
          { { field = "created[" .. op .. "]", message = "must be unix seconds" } })
      end
    end
  end
  if range.gte or range.lte then
    local inner = filter
    filter = function(item)
      local t = tonumber(item.created_at or item.created or item.timestamp)
      if t and t > 1e11 then t = t // 1000 end   -- the older generation stores ms
      if not t or (range.gte and t < range.gte) or (range.lte and t > range.lte) then return false end
      return not inner or inner(item)
    end
  end
  local items, has_more, next_cursor, total = self.store:page(self.team, name, {
    limit = limit, after = after, asc = sort == "asc", filter = matches,
    key = order_by == "name" and name_key or (opts and opts.key) })
  if not items then
    wire.fail(400, "invalid_field_value", "next: unknown cursor " .. after)
  end
  if opts and opts.view then
    for i, obj in ipairs(items) do items[i] = opts.view(obj) end
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

-- The route for method and path: among the routes whose pattern
-- matches, the one of this method with the fewest captures, so a literal
-- path (GET /invoices/sat) wins over a parameter (DELETE
-- /invoices/{uuid}) whatever the registration order; 405 when only
-- other methods match, 404 when nothing does.
local function captures(pattern)
  local n = 0
  for _ in pattern:gsub("%%%(", ""):gmatch("%(") do n = n + 1 end
  return n
end

-- Routes grouped by their first path segment ("/payments/..." ->
-- "payments"), so a request tries only its resource's patterns; a
-- pattern that does not start with a literal segment is tried always.
local function route_index(e)
  if e.route_index then return e.route_index end
  local index, any = {}, {}
  for _, r in ipairs(e.routes) do
    r.ncaps = captures(r.pattern)
    -- ^/a/b$ with nothing but escaped magic characters: matches one path only
    r.literal = r.ncaps == 0 and r.pattern:gsub("%%%p", ""):match("^%^[^%^%$%(%)%%%.%[%]%*%+%-%?]*%$$") ~= nil
    local seg = r.pattern:match("^%^/([%w_]+)[/$]") or r.pattern:match("^%^/([%w_]+)$")
    local list = seg and index[seg] or (not seg and any)
    if not list then list = {}; index[seg] = list end
    list[#list + 1] = r
  end
  e.route_index = { by_segment = index, any = any }
  return e.route_index
end

local function find_route(e, method, path)
  -- the route of a path that a literal pattern matched is remembered
  -- (one path per such pattern: bounded), so a register finds its route
  -- with one lookup
  local literal = e.literal_routes
  if not literal then literal = {}; e.literal_routes = literal end
  local key = method .. " " .. path
  local known = literal[key]
  if known then return known[1], known[2] end
  local ix = route_index(e)
  local path_known, best, best_caps, best_n = false, nil, nil, math.huge
  for pass = 1, 2 do
    local list = pass == 1 and ix.by_segment[path:match("^/([%w_]+)") or ""] or pass == 2 and ix.any or {}
    for _, r in ipairs(list) do
      if path:find(r.pattern) then
        path_known = true
        if r.method == method and r.ncaps < best_n then
          best, best_caps, best_n = r, table.pack(path:match(r.pattern)), r.ncaps
        end
      end
    end
  end
  if best then
    if best.literal then literal[key] = { best, best_caps } end
    return best, best_caps
  end
  if path_known then wire.fail(405, "method_not_allowed", method .. " is not allowed on " .. path) end
  wire.fail(404, "resource_not_found", "no endpoint " .. method .. " /v2" .. path)
end

-- One request, under Emulator:handle's pcall (a function of its own, not
-- a closure made per request).
local function dispatch(self, req)
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
  local auth = req.headers.authorization or ""
  local key = auth:match("^[Bb]earer%s+(%S+)$")
  local own = key and self.store.keys[key]
  if not own and key and jwt.shaped(key) then
    -- a JWT-shaped test key: its team claim is the caller's team
    local claims, why = jwt.verify(key)
    if not claims then wire.fail(401, "invalid_token", "invalid API key: " .. why) end
    if not self.store.teams[claims.team] then
      wire.fail(401, "invalid_token", "invalid API key: team " .. claims.team .. " does not exist")
    end
    own = claims.team
  end
  if not own then
    wire.fail(401, "unauthorized", key and "invalid API key"
      or "missing Authorization: Bearer <api key> header")
  end
  local team = M.resolve_team(self.store, own, req.query.team)
  -- test hook: X-Mock-Now (unix seconds) is "now" for this request,
  -- so a spec can create records at chosen times
  local now = req.headers["x-mock-now"]
  if now ~= nil then
    local t = tostring(now):match("^%d+$") and math.tointeger(tonumber(now))
    if not t then wire.fail(400, "invalid_field_value", "X-Mock-Now: must be unix seconds") end
    local saved = self.store.clock
    self.store.clock = function() return t end
    local ok, a, b, c, d = pcall(function() return self:route_call(route, req, caps, team, own) end)
    self.store.clock = saved
    if not ok then error(a, 0) end
    return a, b, c, d
  end
  return self:route_call(route, req, caps, team, own)
end

-- Does the failed request's route answer in the older generation's
-- error shape? Only a request under /v2 whose route is known does (as
-- when dispatch found it); asked again only when a request failed.
local function older_of(self, req)
  local path = req.path:match("^/v2(/.*)$")
  if not path then return false end
  local ok, route = pcall(find_route, self, req.method, path)
  return ok and route.older or false
end

--- Answer one request {method, path, query, headers, body}; returns
-- status, body table, content type (nil: JSON) and, when the handler
-- has it already, the body's JSON text.
function Emulator:handle(req)
  self.requests = self.requests + 1
  local ok, status, payload, ctype, text = pcall(dispatch, self, req)
  if ok then return status, payload, ctype, text end
  if wire.is_fail(status) then return status.status, wire.error_body(status, older_of(self, req)) end
  io.stderr:write("gigstack mock: handler error: ", tostring(status), "\n")
  return 500, { message = "internal emulator error", error = "internal_server_error" }
end

-- One request is one transaction: the store journals its inserts and
-- removals and the team's folio counters, a failure rolls them back,
-- and webhook deliveries start only once the request succeeded.
-- The context is one table: the events to deliver gather in ctx.outbox
-- (made by the first one) and ctx:stats() asks the emulator, instead of
-- two closures and a table per request.
function Emulator:route_call(route, req, caps, team, own)
  local ctx = setmetatable({ req = req, query = req.query, store = self.store,
    team = team, key_team = own, base_url = "http://" .. (req.headers.host or "127.0.0.1"),
    deliver = true, emulator = self }, Ctx)
  self.store:begin()
  local ok, status, payload, ctype = pcall(route.handler, ctx, table.unpack(caps, 1, caps.n))
  if not ok then
    self.store:rollback()
    error(status, 0)
  end
  self.store:commit()
  local outbox = ctx.outbox
  if outbox then
    for _, ev in ipairs(outbox) do deliver(self, ev) end
  end
  return status, payload, ctype, ctx.answer_text
end

--- What the emulator holds (GET /_mock/stats).
function Ctx:stats()
  return self.emulator:stats()
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
function M.fault_before(emu, req, fault, request_id, delay)
  local json_headers = { ["Content-Type"] = "application/json", ["X-Request-Id"] = request_id }
  local acted = fault == "reset_after" or fault == "truncate"
  if not acted and delay and delay > 0 then sched.sleep(delay) end   -- a failure takes its time too
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
    -- a body announced with Expect: 100-continue and no key is refused
    -- (401) before it is sent
    expect_auth = { { header = "authorization", prefix = "Bearer " },
      { header = "authorization", prefix = "bearer " } },
    handler = function(req)
      local delay = header_latency(req)
      if not delay and emu.latency then
        local lo, hi = emu.latency[1], emu.latency[2] or emu.latency[1]
        delay = lo + (hi - lo) * (emu.store:random() % 1000) / 1000
      end
      local request_id = emu.store:id("req")
      local fault = emu.faults:pick(req)
      local early = fault and M.fault_before(emu, req, fault, request_id, delay)
      if early then return end
      local status, body, ctype, text = emu:handle(req)
      text = text or type(body) == "string" and body or assert(json.encode(body))
      -- the latency is the answer's: the request is handled when it
      -- arrives and the answer waits. (Waiting first made the requests
      -- that arrived while the emulator was busy start their wait
      -- together, so a batch ran in waves, each wave 50 ms + its CPU.)
      if delay and delay > 0 then sched.sleep(delay) end
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
