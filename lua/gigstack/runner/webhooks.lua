--- Webhook listener: gigstack.on("payment.succeeded", fn) starts (once)
-- an HTTP listener on the engine's server. A request must carry the
-- secret (in the path, /hooks/<secret>, or an X-Webhook-Secret header);
-- without it: 401. An event's object is fetched again from the API before
-- handlers see it (a forged event is dropped); the answer waits for the
-- handlers: 200 when all succeeded, 500 otherwise so gigstack delivers it
-- again. Events are deduplicated by id (in memory, and in the journal).
local http = require "gigstack.async.http"
local json = require "gigstack.async.json"
local sched = require "gigstack.async.sched"
local log = require "gigstack.runner.log"
-- the SDK's resources come with the first listener: a run without one
-- does not load them (start-up time)
local function resources() return require "gigstack.resources" end
local client = require "gigstack.client"

-- keep_alive = false (gigstack-run --once): an open listener does not
-- hold the run open; it closes when the script and its jobs are done.
local M = { handlers = {}, listener = nil, keep_alive = true }

local SEEN_MAX = 10000          -- event ids remembered in memory (the journal keeps all)

-- An event is a trigger, not the truth: its object is fetched again from
-- the API (with the listener's client, so it must belong to this team)
-- and handlers get that copy. Kinds without a fetcher pass unverified.
local FETCH = {
  payment = function(gs, o) return gs.payments:get(o.id) end,
  invoice = function(gs, o) return gs.invoices:get(o.uuid or o.id) end,
  receipt = function(gs, o) return gs.receipts:get(o.id) end,
  client = function(gs, o) return gs.clients:get(o.id) end,
  service = function(gs, o) return gs.services:get(o.id) end,
  team = function(gs, o) return gs.teams:get(o.id) end,
}

local function remember(l, id)
  if l.seen[id] then return end
  l.seen[id] = true
  l.seen_order[#l.seen_order + 1] = id
  if #l.seen_order > SEEN_MAX then
    l.seen[table.remove(l.seen_order, 1)] = nil
  end
end

--- Replace ev.data.object with the API's copy. Returns "ok", "forged"
-- (the API does not know the object: drop the event) or "retry" (could
-- not ask: let gigstack deliver it again).
local function verify(l, ev, kind)
  local gs = l.client
  if gs == false then ev.verified = false; return "ok" end
  local object = type(ev.data) == "table" and ev.data.object
  local fetch = FETCH[kind:match("^([%w_]+)%.") or ""]
  if type(object) ~= "table" or not fetch then ev.verified = false; return "ok" end
  if (object.id or object.uuid) == nil then return "forged", "event object has no id" end
  local fresh, err = fetch(gs, object)
  if fresh then
    ev.data.object, ev.verified = fresh, true
    return "ok"
  end
  if err.kind == "not_found" then
    if kind:match("%.deleted$") then ev.verified = true; return "ok" end   -- it is gone indeed
    return "forged", tostring(err)
  end
  return "retry", tostring(err)
end

--- Run every handler; true when all succeeded.
local function run_handlers(ev, kind, id)
  local list = {}
  for _, h in ipairs(M.handlers[kind] or {}) do list[#list + 1] = h end
  for _, h in ipairs(M.handlers["*"] or {}) do list[#list + 1] = h end
  local all_ok = true
  for _, h in ipairs(list) do
    local ok, err = xpcall(h, debug.traceback, ev)
    if not ok then
      all_ok = false
      log.event("webhook.handler_failed", { event = kind, id = id, error = tostring(err) }, "error")
    end
  end
  return all_ok
end

--- Process one event and say what to answer: handlers run before the
-- answer, so a failure gets a 500 and gigstack delivers the event again;
-- the event is recorded done (memory, journal) only when all succeeded.
local function dispatch(l, ev)
  local kind = ev.type or ev.event
  local id = ev.id ~= nil and tostring(ev.id) or nil
  if id and l.seen[id] then l.duplicates = l.duplicates + 1; return 200 end
  if id and l.busy[id] then return 503 end          -- the same event is being processed
  if id then l.busy[id] = true end
  local function process()
    local verdict, why = verify(l, ev, kind)
    if verdict == "forged" then
      l.unverified = l.unverified + 1
      log.event("webhook.unverified", { event = kind, id = id, reason = why }, "warn")
      return "forged"
    elseif verdict == "retry" then
      log.event("webhook.verify_failed", { event = kind, id = id, error = why }, "error")
      return nil, 500
    end
    if not run_handlers(ev, kind, id) then
      l.failed = l.failed + 1
      return nil, 500
    end
    l.processed = l.processed + 1
    return kind
  end
  local function settle()
    if id and l.journal then
      local result, err = l.journal:once("webhook:" .. id, process, { wait = 0 })
      if result and err == "skipped" then l.duplicates = l.duplicates + 1 end
      if result then return result end
      return nil, type(err) == "table" and err.kind == "busy" and 503 or 500
    end
    return process()
  end
  local ok, result, status = pcall(settle)
  if id then l.busy[id] = nil end
  if not ok then error(result, 0) end     -- a journal error: the server answers 500
  if not result then return status end
  if id then remember(l, id) end
  return 200
end

--- Start the listener. opts: host (127.0.0.1; "0.0.0.0" behind a
-- reverse proxy), port (0 = any), secret (random if absent), journal
-- (gigstack.runner.journal: events done are recorded there, and two
-- listeners on one journal process an event once), client (fetches each
-- event's object; default gigstack.new{}; false hands handlers the
-- unverified event), public_url (what gigstack must call, e.g.
-- https://hooks.example.mx; default $GIGSTACK_WEBHOOK_URL, else the local
-- address). l.url carries the secret: give it to gigstack, never print
-- it; l.display_url hides it.
function M.listen(opts)
  if M.listener then return M.listener end
  opts = opts or {}
  local gs = opts.client
  if gs == nil then
    local ok, made = pcall(client.new, {})
    if not ok then
      error("gigstack.on: events are checked against the API, which needs a client: pass "
        .. "{client = gs} (or client = false to take events unverified): " .. tostring(made), 3)
    end
    gs = resources().attach(made)
  end
  local l = { secret = opts.secret or resources().uuid4():gsub("-", ""), seen = {}, seen_order = {},
    busy = {}, processed = 0, duplicates = 0, rejected = 0, failed = 0, unverified = 0,
    journal = opts.journal, client = gs }
  local server, err = http.listen{ host = opts.host or "127.0.0.1", port = opts.port or 0,
    -- a body announced with Expect: 100-continue reaches only the secret
    expect_auth = { { path = "/hooks/" .. l.secret }, { header = "x-webhook-secret", equals = l.secret } },
    on_error = function(msg) log.event("webhook.error", { error = msg }, "error") end,
    handler = function(req)
      local given = req.path:match("^/hooks/([%w]+)$") or req.headers["x-webhook-secret"]
      if req.method ~= "POST" then return 405, {}, "" end
      if given ~= l.secret then
        l.rejected = l.rejected + 1
        return 401, { ["Content-Type"] = "application/json" }, '{"error":"unauthorized"}'
      end
      local ev = json.decode(req.body)
      if type(ev) ~= "table" or json.is_array(ev) or type(ev.type or ev.event) ~= "string" then
        return 400, { ["Content-Type"] = "application/json" }, '{"error":"an event is a JSON object with a type"}'
      end
      local status = dispatch(l, ev)
      return status, { ["Content-Type"] = "application/json" },
        status == 200 and '{"received":true}' or '{"received":false}'
    end }
  if not server then error("gigstack.on: " .. err, 3) end
  l.server = server
  local public = opts.public_url or os.getenv("GIGSTACK_WEBHOOK_URL")
  if public == "" then public = nil end
  if public and not public:match("^https?://[^%s/]+") then
    server.close()
    error("gigstack.on: public_url must be an http(s) URL, got " .. public, 3)
  end
  l.local_url = server.url
  l.base = (public or server.url):gsub("/+$", "") .. "/hooks/"
  l.url = l.base .. l.secret
  l.display_url = l.base .. "…"
  function l.register(api, events) return M.register(api, l, events) end
  -- a task that keeps gigstack-run alive while the listener is open
  if M.keep_alive then
    l.keeper = sched.spawn(function() while not l.closed do sched.sleep(0.2) end end)
  end
  function l.close()
    if l.closed then return end
    l.closed = true
    server.close()
    M.listener = nil
  end
  M.listener = l
  return l
end

--- Register the listener on gigstack: the webhook already pointing at
-- this listener (its URL up to /hooks/, whatever the secret of an
-- earlier run) is updated with the new URL and events; more than one
-- such webhook (left by older runs) are deleted but the first; none:
-- one is created. Returns the webhook and "created" or "updated", or
-- nil, err.
function M.register(gs, l, events)
  local mine = {}
  for w in gs.webhooks:each{ limit = 100 } do
    if type(w.url) == "string" and w.url:sub(1, #l.base) == l.base then mine[#mine + 1] = w end
  end
  local body = { url = l.url, events = events, status = "active" }
  local hook, err, action
  if mine[1] then
    hook, err = gs.webhooks:update(mine[1].id, body)
    action = "updated"
  else
    hook, err = gs.webhooks:create(body)
    action = "created"
  end
  if not hook then return nil, err end
  for i = 2, #mine do
    local ok, derr = gs.webhooks:delete(mine[i].id)
    if not ok then log.event("webhook.cleanup_failed", { id = mine[i].id, error = log.describe(derr) }, "warn") end
  end
  log.event("webhook.registered", { id = hook.id, url = l.display_url, action = action,
    removed = #mine > 1 and #mine - 1 or nil })
  return hook, action
end

--- Register fn for an event type ("*" for every event); starts the
-- listener if needed and returns it (its url goes to gs.webhooks:create).
function M.on(kind, fn, opts)
  if type(kind) ~= "string" or kind == "" then error("gigstack.on: event type must be a string", 2) end
  if type(fn) ~= "function" then error("gigstack.on: fn must be a function", 2) end
  M.handlers[kind] = M.handlers[kind] or {}
  table.insert(M.handlers[kind], fn)
  return M.listen(opts)
end

function M.stop()
  if M.listener then M.listener.close() end
  M.handlers = {}
end

return M
