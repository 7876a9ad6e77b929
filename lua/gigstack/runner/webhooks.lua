--- Webhook listener: gigstack.on("payment.succeeded", fn) starts (once)
-- an HTTP listener on the engine's server. A request must carry the
-- secret (in the path, /hooks/<secret>, or an X-Webhook-Secret header);
-- without it: 401. Valid events get 200 at once and are processed after,
-- deduplicated by event id (in memory, and in the journal when given).
local http = require "gigstack.async.http"
local json = require "gigstack.async.json"
local sched = require "gigstack.async.sched"
local log = require "gigstack.runner.log"
local resources = require "gigstack.resources"

-- keep_alive = false (gigstack-run --once): an open listener does not
-- hold the run open; it closes when the script and its jobs are done.
local M = { handlers = {}, listener = nil, keep_alive = true }

local function dispatch(l, ev)
  local id = ev.id
  if id and l.seen[id] then l.duplicates = l.duplicates + 1; return end
  if id and l.journal and l.journal.db:get("webhook:" .. id) then l.duplicates = l.duplicates + 1; return end
  if id then l.seen[id] = true end
  local kind = ev.type or ev.event
  local list = {}
  for _, h in ipairs(M.handlers[kind] or {}) do list[#list + 1] = h end
  for _, h in ipairs(M.handlers["*"] or {}) do list[#list + 1] = h end
  for _, h in ipairs(list) do
    local ok, err = xpcall(h, debug.traceback, ev)
    if not ok then log.event("webhook.handler_failed", { event = kind, id = id, error = tostring(err) }, "error") end
  end
  l.processed = l.processed + 1
  if id and l.journal then l.journal.db:done("webhook:" .. id, kind or "") end
end

--- Start the listener. opts: host (127.0.0.1; "0.0.0.0" behind a
-- reverse proxy), port (0 = any), secret (random if absent), journal
-- (gigstack.runner.journal, for dedupe across runs), public_url (what
-- gigstack must call, e.g. https://hooks.example.mx; default
-- $GIGSTACK_WEBHOOK_URL, else the local address). l.url carries the
-- secret: give it to gigstack, never print it; l.display_url hides it.
function M.listen(opts)
  if M.listener then return M.listener end
  opts = opts or {}
  local l = { secret = opts.secret or resources.uuid4():gsub("-", ""), seen = {}, processed = 0,
    duplicates = 0, rejected = 0, journal = opts.journal }
  local server, err = http.listen{ host = opts.host or "127.0.0.1", port = opts.port or 0,
    handler = function(req)
      local given = req.path:match("^/hooks/([%w]+)$") or req.headers["x-webhook-secret"]
      if req.method ~= "POST" then return 405, {}, "" end
      if given ~= l.secret then
        l.rejected = l.rejected + 1
        return 401, { ["Content-Type"] = "application/json" }, '{"error":"unauthorized"}'
      end
      local ev = json.decode(req.body)
      if type(ev) ~= "table" then return 400, {}, "" end
      req:respond(200, { ["Content-Type"] = "application/json" }, '{"received":true}')
      dispatch(l, ev)    -- after the answer: gigstack gets its 2xx at once
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
  function l.register(gs, events) return M.register(gs, l, events) end
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
