--- Teams (gigstack Connect): list, get, create, update, integrations,
-- series, settings (split billing), members, onboarding URL.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local json = require "gigstack.async.json"

local M = {}

local function visible(ctx, team)
  local mine = ctx.store.teams[ctx.key_team]
  return team.id == mine.id or (mine.is_master_team and team.billing_account == mine.billing_account)
end

local function find(ctx, id)
  local t = ctx.store.teams[id]
  if not t or not visible(ctx, t) then wire.fail(404, "resource_not_found", "team " .. id .. " not found") end
  return t
end

-- Fields the emulator keeps for itself.
local PRIVATE = { folios = true, manifest = true }

-- A seed team has its CSD (sello) uploaded; a team created over the API
-- has not until POST /teams/{id}/sat-connection.
local function sat_of(t)
  if t.sat then return t.sat end
  if t.created_at then return { completed = false, csd_expires_at = json.null, connected_at = json.null } end
  -- 2030-01-01T00:00:00Z and 2025-01-01T00:00:00Z, unix seconds
  return { completed = true, csd_expires_at = 1893456000, connected_at = 1735689600 }
end

--- The team's integrations, one source for GET /teams/integrations and
-- the team object: {<name> = {completed}}.
local function integrations_of(t)
  local out = {}
  for name, v in pairs(t.integrations or { stripe = { completed = false } }) do
    out[name] = { completed = type(v) == "table" and v.completed == true }
  end
  out.sat = { completed = sat_of(t).completed }
  return out
end
M.integrations_of = integrations_of

local function public(t)
  local out = {}
  for k, v in pairs(t) do
    if not PRIVATE[k] then out[k] = v end
  end
  out.sat = sat_of(t)
  out.integrations = integrations_of(t)
  local brand = {}
  for k, v in pairs(type(t.brand) == "table" and t.brand or {}) do brand[k] = v end
  brand.alias = brand.alias or t.name
  out.brand = brand
  out.billing = { credits = t.credits or (t.created_at and 0 or 100), billing_account = t.billing_account }
  return out
end

M.find = find
M.view = public

local SETTINGS = { split_billing = "boolean", split_amount = "number", metadata_split_keys = "table",
  split_billing_type = "string", split_billing_type_connect = "string", default_series = "string",
  send_email = "boolean", default_use = "string" }

function M.routes(route)
  route("GET", "^/teams$", function(ctx)
    local out = json.array()
    for _, t in pairs(ctx.store.teams) do
      if visible(ctx, t) then out[#out + 1] = public(t) end
    end
    -- the key's own team first (as clients resolve "my team"), then by id
    local own = ctx.key_team
    table.sort(out, function(a, b)
      if (a.id == own) ~= (b.id == own) then return a.id == own end
      return a.id < b.id
    end)
    return 200, wire.list(out, false, nil, #out)
  end)
  route("GET", "^/teams/integrations$", function(ctx)
    local t = ctx.store.teams[ctx.team]
    return 200, wire.object(integrations_of(t))
  end)
  route("POST", "^/teams$", function(ctx)
    local body = ctx:body()
    local c = check.new()
    local name = c:string(body, "name", "name", true)
    local tax_id = c:string(body, "tax_id", "tax_id")
    local problem = tax_id and check.rfc_problem(tax_id)
    if problem then c:add("tax_id", "RFC " .. problem) end
    c:done()
    local mine = ctx.store.teams[ctx.key_team]
    local t = { id = ctx.store:id("team"), name = name, legal_name = body.legal_name or name, tax_id = tax_id,
      tax_system = body.tax_system, address = body.address or {}, metadata = body.metadata or {},
      billing_account = mine.billing_account, is_master_team = false, members = json.array(),
      series = json.array(), created_at = ctx.store:now() }
    ctx.store.teams[t.id] = t
    ctx:event("team.created", t)
    return 200, wire.object(public(t), "Team created")
  end)
  route("GET", "^/teams/([^/]+)/onboarding%-url$", function(ctx, id)
    local t = find(ctx, id)
    return 200, { data = "https://embeded.gigstack.pro/?sessionId=" .. ctx.store:id("sess", "") .. "&team=" .. t.id,
      message = "Onboarding URL retrieved successfully" }
  end)
  route("GET", "^/teams/([^/]+)/series$", function(ctx, id)
    local t = find(ctx, id)
    return 200, wire.list(t.series or json.array(), false, nil, #(t.series or {}))
  end)
  route("POST", "^/teams/([^/]+)/series$", function(ctx, id)
    local t = find(ctx, id)
    local body = ctx:body()
    local c = check.new()
    local name = c:string(body, "name", "name", true)
    if name and not name:match("^[%w%-]+$") then c:add("name", "letters, digits and dashes only") end
    c:done()
    t.series = t.series or json.array()
    for _, s in ipairs(t.series) do
      if s.name == name then wire.fail(409, "resource_already_exists", "series " .. name .. " exists") end
    end
    local s = { id = ctx.store:id("series"), name = name, live = body.live or 1, test = body.test or 1,
      type = body.type or "I" }
    t.series[#t.series + 1] = s
    return 200, wire.object(s, "Series created")
  end)
  route("PUT", "^/teams/([^/]+)/series/([^/]+)$", function(ctx, id, sid)
    local t = find(ctx, id)
    local body = ctx:body()
    for _, s in ipairs(t.series or {}) do
      if s.id == sid then
        local c = check.new()
        for _, k in ipairs{ "live", "test" } do
          if body[k] ~= nil and (math.type(body[k]) ~= "integer" or body[k] < 1) then c:add(k,
            "must be an integer >= 1") end
        end
        c:done()
        s.live, s.test = body.live or s.live, body.test or s.test
        return 200, wire.object(s, "Series updated")
      end
    end
    wire.fail(404, "resource_not_found", "series " .. sid .. " not found")
  end)
  route("PUT", "^/teams/([^/]+)/settings$", function(ctx, id)
    local t = find(ctx, id)
    local body = ctx:body()
    local c = check.new()
    for k, v in pairs(body) do
      if not SETTINGS[k] then c:add(k, "is not a team setting")
      elseif type(v) ~= SETTINGS[k] then c:add(k, "must be a " .. SETTINGS[k]) end
    end
    if type(body.split_amount) == "number" and (body.split_amount < 0 or body.split_amount > 100) then
      c:add("split_amount", "must be a percentage from 0 to 100")
    end
    for _, k in ipairs{ "split_billing_type", "split_billing_type_connect" } do
      if type(body[k]) == "string" and not ({ client = 1, master = 1, connect = 1 })[body[k]] then
        c:add(k, "must be client, master or connect")
      end
    end
    c:done()
    for k, v in pairs(body) do t[k] = v end
    return 200, wire.object(public(t), "Team settings updated")
  end)
  route("POST", "^/teams/([^/]+)/add%-member$", function(ctx, id)
    local t = find(ctx, id)
    local body = ctx:body()
    local c = check.new()
    local uid = c:string(body, "id", "id", true)
    local role = c:one_of(body, "role", "role", { "admin", "editor", "viewer", "member" }, "member")
    c:done()
    local account = "_users:" .. tostring(ctx.store.teams[ctx.key_team].billing_account)
    if not ctx.store:get(account, "users", uid) then wire.fail(404, "resource_not_found",
      "user " .. uid .. " not found") end
    t.members = t.members or json.array()
    for _, m in ipairs(t.members) do
      if m.id == uid then wire.fail(409, "resource_already_exists", "user " .. uid .. " is already a member") end
    end
    t.members[#t.members + 1] = { id = uid, role = role }
    return 200, wire.object(public(t), "Member added")
  end)
  route("POST", "^/teams/([^/]+)/remove%-member$", function(ctx, id)
    local t = find(ctx, id)
    local uid = ctx:body().id
    for i, m in ipairs(t.members or {}) do
      if m.id == uid then
        table.remove(t.members, i)
        return 200, wire.object(public(t), "Member removed")
      end
    end
    wire.fail(404, "resource_not_found", "user " .. tostring(uid) .. " is not a member of " .. id)
  end)
  route("GET", "^/teams/([^/]+)$", function(ctx, id) return 200, wire.object(public(find(ctx, id))) end)
  route("PUT", "^/teams/([^/]+)$", function(ctx, id)
    local t = find(ctx, id)
    local body = ctx:body()
    local c = check.new()
    if body.tax_id ~= nil then
      local problem = check.rfc_problem(body.tax_id)
      if problem then c:add("tax_id", "RFC " .. problem) end
    end
    for _, k in ipairs{ "id", "billing_account", "is_master_team" } do
      if body[k] ~= nil then c:add(k, "cannot be changed") end
    end
    c:done()
    for _, k in ipairs{ "name", "legal_name", "tax_id", "tax_system", "address", "metadata", "brand" } do
      if body[k] ~= nil then t[k] = body[k] end
    end
    ctx:event("team.updated", t)
    return 200, wire.object(public(t), "Team updated")
  end)
end

return M
