--- Webhook endpoints: list, get, create, update, delete. Events are
-- recorded by every state change (ctx:event); delivery is later work.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local json = require "gigstack.async.json"

local M = {}

local function find(ctx, id)
  return ctx:find("webhooks", id, "webhook")
end

local function fields(c, body, w, creating)
  local url = c:string(body, "url", "url", creating)
  if url and not url:match("^https?://[^%s]+$") then c:add("url", "must be an http(s) URL") end
  w.url = url or w.url
  if body.events ~= nil then
    if type(body.events) ~= "table" then c:add("events", "must be an array of event names")
    else
      local out = json.array()
      for i, e in ipairs(body.events) do
        if type(e) ~= "string" or not e:match("^[%w_]+%.[%w_]+$") then
          c:add("events[" .. i .. "]", "must be an event name like payment.succeeded")
        else out[#out + 1] = e end
      end
      w.events = out
    end
  end
  w.events = w.events or json.array()
  w.description = body.description or w.description
  w.status = c:one_of(body, "status", "status", { "active", "inactive" }, w.status or "active")
  return w
end

function M.routes(route)
  route("GET", "^/webhooks$", function(ctx)
    local status = ctx.query.status
    return 200, ctx:list("webhooks", function(w) return not status or w.status == status end)
  end)
  route("POST", "^/webhooks$", function(ctx)
    local c = check.new()
    local w = fields(c, ctx:body(), {}, true)
    c:done()
    w.id = ctx.store:id("wh")
    w.object = "webhook"
    w.owner = ctx.team
    w.created_at = ctx.store:now() * 1000
    ctx.store:insert(ctx.team, "webhooks", w)
    local env = wire.object(w, "Webhook created")
    env.success, env.timestamp = true, ctx.store:now() * 1000
    return 200, env
  end)
  route("GET", "^/webhooks/([^/]+)$", function(ctx, id) return 200, wire.object(find(ctx, id)) end)
  route("PUT", "^/webhooks/([^/]+)$", function(ctx, id)
    local w = find(ctx, id)
    check.update(w, function(c, copy) fields(c, ctx:body(), copy, false) end)
    return 200, wire.object(w, "Webhook updated")
  end)
  route("DELETE", "^/webhooks/([^/]+)$", function(ctx, id)
    find(ctx, id)
    ctx.store:remove(ctx.team, "webhooks", id)
    return 200, wire.object({ id = id, deleted = true }, "Webhook deleted")
  end)
end

return M
