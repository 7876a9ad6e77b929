--- /services: create, list, get, update, delete.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local money = require "gigstack.fiscal.money"

local M = {}

local function apply(c, body, obj, creating)
  local description = c:string(body, "description", "description", creating)
  local price = c:amount(body, "unit_price", "unit_price", creating)
  local product_key = c:string(body, "product_key", "product_key", creating)
  if product_key and not product_key:match("^%d%d%d%d%d%d%d%d$") then
    c:add("product_key", "must be an 8-digit SAT c_ClaveProdServ code")
  end
  local unit_key = c:string(body, "unit_key", "unit_key", creating)
  obj.description = description or obj.description
  if price then obj.unit_price = money.json(price) end
  obj.product_key = product_key or obj.product_key
  obj.unit_key = unit_key or obj.unit_key
  for _, k in ipairs{ "unit_name", "sku", "taxes", "metadata" } do
    if body[k] ~= nil then obj[k] = body[k] end
  end
  return obj
end

local function find(ctx, id)
  return ctx:find("services", id, "service")
end

function M.routes(route)
  route("POST", "^/services$", function(ctx)
    local c = check.new()
    local obj = apply(c, ctx:body(), {}, true)
    c:done()
    obj.id = ctx.store:id("service")
    obj.object = "service"
    obj.created_at = ctx.store:now()
    ctx.store:insert(ctx.team, "services", obj)
    ctx:event("service.created", obj)
    return 200, wire.object(obj, "Service created successfully")
  end)
  route("GET", "^/services$", function(ctx)
    return 200, ctx:list("services")
  end)
  route("GET", "^/services/([^/]+)$", function(ctx, id)
    return 200, wire.object(find(ctx, id))
  end)
  route("PUT", "^/services/([^/]+)$", function(ctx, id)
    local obj = find(ctx, id)
    check.update(obj, function(c, copy) apply(c, ctx:body(), copy, false) end)
    ctx:event("service.updated", obj)
    return 200, wire.object(obj, "Service updated successfully")
  end)
  route("DELETE", "^/services/([^/]+)$", function(ctx, id)
    find(ctx, id)
    ctx.store:remove(ctx.team, "services", id)
    ctx:event("service.deleted", { id = id })
    return 200, wire.object({ id = id, deleted = true }, "Service deleted successfully")
  end)
end

return M
