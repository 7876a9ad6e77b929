--- /clients: create, list, get, update, delete.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"

local M = {}

--- Validate client fields into a new or existing client object.
-- path prefixes field names (e.g. "client.").
function M.apply(c, body, obj, path, creating)
  path = path or ""
  local name = c:string(body, "name", path .. "name")
  local legal = c:string(body, "legal_name", path .. "legal_name")
  if creating and not name and not legal then
    c:add(path .. "name", "name or legal_name is required")
  end
  local tax_id = c:string(body, "tax_id", path .. "tax_id")
    or c:string(body, "rfc", path .. "rfc")
  local rfc_problem = tax_id and check.rfc_problem(tax_id)
  if rfc_problem then c:add(path .. "tax_id", "RFC " .. rfc_problem) end
  local email = c:string(body, "email", path .. "email")
  if email and not email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    c:add(path .. "email", "must be an email address")
  end
  local tax_system = c:one_of(body, "tax_system", path .. "tax_system", check.TAX_SYSTEMS)
  local use = c:string(body, "use", path .. "use")
  local address = c:object(body, "address", path .. "address")
  if address and address.zip ~= nil and not tostring(address.zip):match("^%d%d%d%d%d$") then
    c:add(path .. "address.zip", "must be a 5-digit postal code")
  end
  obj.name = name or obj.name or legal
  obj.legal_name = legal or obj.legal_name or name
  obj.tax_id = tax_id and tax_id:upper() or obj.tax_id
  obj.email = email or obj.email
  obj.tax_system = tax_system or obj.tax_system
  obj.use = use or obj.use or "G03"
  if address then obj.address = address end
  obj.address = obj.address or {}
  if body.metadata ~= nil then obj.metadata = body.metadata end
  if body.phone ~= nil then obj.phone = body.phone end
  return obj
end

function M.create(ctx, body, path)
  local c = check.new()
  local obj = M.apply(c, body, {}, path, true)
  c:done()
  obj.id = ctx.store:id("client")
  obj.object = "client"
  obj.livemode = false
  obj.is_valid = obj.tax_id ~= nil and obj.tax_system ~= nil and obj.address.zip ~= nil
  obj.created_at = ctx.store:now()
  obj.team = ctx.team
  return ctx.store:insert(ctx.team, "clients", obj)
end

function M.find(ctx, id)
  local obj = ctx.store:get(ctx.team, "clients", id)
  if not obj then wire.fail(404, "resource_not_found", "client " .. id .. " not found") end
  return obj
end

--- First client whose field `key` equals value (case-insensitive).
function M.search(ctx, key, value)
  local coll = ctx.store:coll(ctx.team, "clients")
  local want = tostring(value):lower()
  for _, id in ipairs(coll.order) do
    local obj = coll.items[id]
    if obj and type(obj[key]) == "string" and obj[key]:lower() == want then return obj end
  end
end

function M.routes(route)
  route("POST", "^/clients$", function(ctx)
    return 200, wire.object(M.create(ctx, ctx:body()), "Client created successfully")
  end)
  route("GET", "^/clients$", function(ctx)
    return 200, ctx:list("clients")
  end)
  route("GET", "^/clients/([^/]+)$", function(ctx, id)
    return 200, wire.object(M.find(ctx, id))
  end)
  route("PUT", "^/clients/([^/]+)$", function(ctx, id)
    local obj = M.find(ctx, id)
    local c = check.new()
    local copy = {}
    for k, v in pairs(obj) do copy[k] = v end
    M.apply(c, ctx:body(), copy, "", false)
    c:done()
    for k, v in pairs(copy) do obj[k] = v end
    obj.updated_at = ctx.store:now()
    return 200, wire.object(obj, "Client updated successfully")
  end)
  route("DELETE", "^/clients/([^/]+)$", function(ctx, id)
    M.find(ctx, id)
    ctx.store:remove(ctx.team, "clients", id)
    return 200, wire.object({ id = id, deleted = true }, "Client deleted successfully")
  end)
end

return M
