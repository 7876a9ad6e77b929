--- Users of the billing account: list, get, create, update, reset
-- password, login link. Stored once per emulator (not per team).
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"

local M = {}

-- Users belong to the billing account of the key's team.
local function scope(ctx)
  return "_users:" .. tostring(ctx.store.teams[ctx.key_team].billing_account)
end

local function find(ctx, id)
  local u = ctx.store:get(scope(ctx), "users", id)
  if not u then wire.fail(404, "resource_not_found", "user " .. id .. " not found") end
  return u
end

local function by_email(ctx, email)
  local coll = ctx.store:coll(scope(ctx), "users")
  for _, id in ipairs(coll.order) do
    local u = coll.items[id]
    if u and u.email == email then return u end
  end
end

local function fields(c, body, u, creating)
  local email = c:string(body, "email", "email", creating)
  if email and not email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then c:add("email", "must be an email address") end
  u.email = email or u.email
  for _, k in ipairs{ "first_name", "last_name", "phone", "company_role", "address" } do
    if body[k] ~= nil then u[k] = body[k] end
  end
  u.role = c:one_of(body, "role", "role", { "admin", "editor", "viewer", "member" }, u.role or "member")
  return u
end

function M.routes(route)
  route("POST", "^/users/reset%-password$", function(ctx)
    local email = ctx:body().email
    if type(email) ~= "string" then wire.fail(400, "missing_required_field", "email: is required") end
    if not by_email(ctx, email) then wire.fail(404, "resource_not_found", "no user with email " .. email) end
    return 200, wire.object({ email = email, sent = true }, "Password reset email sent")
  end)
  route("POST", "^/users/login%-link$", function(ctx)
    local uid = ctx:body().user_id
    if type(uid) ~= "string" then wire.fail(400, "missing_required_field", "user_id: is required") end
    find(ctx, uid)
    return 200, wire.object({ url = "https://app.gigstack.pro/login?token=" .. ctx.store:id("tok", ""),
      expires_at = ctx.store:now() + 3600 }, "Login link generated")
  end)
  route("GET", "^/users$", function(ctx)
    local saved = ctx.team
    ctx.team = scope(ctx)
    local env = ctx:list("users")
    ctx.team = saved
    return 200, env
  end)
  route("POST", "^/users$", function(ctx)
    local body = ctx:body()
    local c = check.new()
    local u = fields(c, body, {}, true)
    c:done()
    if by_email(ctx, u.email) then wire.fail(409, "resource_already_exists",
      "a user with email " .. u.email .. " exists") end
    u.id = ctx.store:id("user")
    u.object = "user"
    u.created_at = ctx.store:now()
    ctx.store:insert(scope(ctx), "users", u)
    if body.auto_join == true then
      local t = ctx.store.teams[ctx.team]
      t.members = t.members or {}
      t.members[#t.members + 1] = { id = u.id, role = u.role }
    end
    return 200, wire.object(u, "User created")
  end)
  route("GET", "^/users/([^/]+)$", function(ctx, id) return 200, wire.object(find(ctx, id)) end)
  route("PUT", "^/users/([^/]+)$", function(ctx, id)
    local u = find(ctx, id)
    check.update(u, function(c, copy) fields(c, ctx:body(), copy, false) end)
    return 200, wire.object(u, "User updated")
  end)
end

return M
