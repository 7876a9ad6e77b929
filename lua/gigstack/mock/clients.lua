--- /clients: create, list, get, update, delete.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local json = require "gigstack.async.json"
local sat = require "gigstack.fiscal.sat"

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
  obj.use = use or obj.use or sat.default_uso(obj.tax_id, obj.tax_system)   -- S01 for 616, else G03
  -- a uso outside c_UsoCFDI (the docs' example P01) is left to the invoice
  local why = use and sat.uso(use) and check.uso_problem(use, obj.tax_id, obj.tax_system)
  if why then c:add(path .. "use", why) end
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
  ctx.store:insert(ctx.team, "clients", obj)
  ctx:event("client.created", obj)
  return obj
end

function M.find(ctx, id)
  return ctx:find("clients", id, "client")
end

--- Can a CFDI 4.0 be issued to this client? RFC, régimen and código
-- postal are all required of a receptor.
function M.invoiceable(obj)
  return obj ~= nil and obj.tax_id ~= nil and obj.tax_system ~= nil
    and type(obj.address) == "table" and obj.address.zip ~= nil
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

--- Fiscal checks the SAT would make on a receptor.
local function fiscal_problems(obj)
  local rfc = require "gigstack.fiscal.rfc"
  local problems = json.array()
  local info, err = rfc.parse(obj.tax_id)
  if not info then problems[#problems + 1] = { field = "tax_id", message = "RFC " .. err } end
  if not obj.tax_system then
    problems[#problems + 1] = { field = "tax_system", message = "is missing" }
  elseif info and info.type ~= "generic" and not sat.regimen_allows(obj.tax_system, info.type) then
    problems[#problems + 1] = { field = "tax_system",
      message = "régimen " .. obj.tax_system .. " is not for this persona" }
  end
  if not (obj.address and obj.address.zip) then problems[#problems + 1] = { field = "address.zip",
    message = "is missing" } end
  if obj.use and info and info.type ~= "generic" and obj.tax_system then
    local ok, why = sat.uso_allows(obj.use, obj.tax_system, info.type)
    if not ok then problems[#problems + 1] = { field = "use", message = "uso " .. obj.use .. " " .. why } end
  end
  return problems
end

function M.routes(route)
  route("GET", "^/clients/search$", function(ctx)
    local q = (ctx.query.q or ""):lower()
    if q == "" then wire.fail(400, "missing_required_field", "q: is required") end
    return 200, ctx:list("clients", function(c)
      local hay = table.concat({ c.name or "", c.legal_name or "", c.tax_id or "", c.email or "", c.id }, " ")
      return hay:lower():find(q, 1, true) ~= nil
    end)
  end)
  route("POST", "^/clients/validate/([^/]+)$", function(ctx, id)
    local obj = M.find(ctx, id)
    local problems = fiscal_problems(obj)
    obj.is_valid = #problems == 0
    return 200, wire.object({ id = id, is_valid = obj.is_valid, problems = problems,
      efos = { is_valid = true } }, obj.is_valid and "Fiscal information is valid" or "Fiscal information has problems")
  end)
  route("POST", "^/clients/customerportal$", function(ctx)
    local body = ctx:body()
    local obj
    if check.present(body.id) then obj = M.find(ctx, tostring(body.id))
    elseif check.present(body.email) then
      obj = M.search(ctx, "email", body.email)
      if not obj then wire.fail(404, "resource_not_found", "no client with email " .. tostring(body.email)) end
    else
      wire.fail(400, "validation_failed", "id or email is required", { { field = "id",
        message = "id or email is required" } })
    end
    local now = ctx.store:now()
    return 200, wire.object({ url = "https://portal.gigstack.io/c/" .. ctx.store:id("tok", ""),
      client_id = obj.id, expires_at = (now + 5 * 86400) * 1000 }, "Customer portal token created")
  end)
  route("POST", "^/clients/([^/]+)/stamp%-pending%-receipts$", function(ctx, id)
    local obj = M.find(ctx, id)
    local coll = ctx.store:coll(ctx.team, "receipts")
    local stamped = json.array()
    for _, rid in ipairs(coll.order) do
      local r = coll.items[rid]
      if r and r.status == "pending" and r.client and r.client.id == obj.id then
        local inv = ctx.peers.invoices.issue(ctx, { id = r.payment_id, client = obj, items = r.items,
          currency = r.currency, exchange_rate = 1, payment_form = r.payment_form or "01", subtotal = r.subtotal,
          taxes = r.taxes, withholding_taxes = r.withholding_taxes, total = r.total }, "PUE")
        r.status, r.invoice_id, r.invoiced_at = "invoiced", inv.uuid, ctx.store:now()
        stamped[#stamped + 1] = { receipt = r.id, invoice = inv.uuid }
      end
    end
    return 200, wire.object({ client_id = id, stamped = stamped }, #stamped .. " receipts stamped")
  end)
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
    check.update(obj, function(c, copy) M.apply(c, ctx:body(), copy, "", false) end)
    obj.updated_at = ctx.store:now()
    ctx:event("client.updated", obj)
    return 200, wire.object(obj, "Client updated successfully")
  end)
  route("DELETE", "^/clients/([^/]+)$", function(ctx, id)
    M.find(ctx, id)
    ctx.store:remove(ctx.team, "clients", id)
    ctx:event("client.deleted", { id = id })
    return 200, wire.object({ id = id, deleted = true }, "Client deleted successfully")
  end)
end

return M
