--- Resource objects: the API's operations with its own names. Every
-- call takes an options table whose `team` overrides the client's.
local paginate = require "gigstack.paginate"
local http = require "gigstack.http"
local validate = require "gigstack.validate"

local M = {}

local function path_id(id, what)
  if type(id) ~= "string" or id == "" then
    error(what .. ": id must be a non-empty string", 3)
  end
  return http.escape(id)
end

local function split_team(params)
  local query, team = {}, nil
  for k, v in pairs(params or {}) do
    if k == "team" then team = v else query[k] = v end
  end
  return query, team
end

--- Run the validator unless the client or the call opted out.
local function checked(client, opts, validator, body, vopts)
  if client.validate == false or (opts and opts.validate == false) then return true end
  return validator(body, vopts)
end

--- A collection at `base` (e.g. "/clients") with list/each/get/create/
-- update/delete as asked in ops; ops.validator checks bodies first.
local function collection(client, base, ops, name)
  local r = { client = client, path = base }
  if ops.list then
    function r.list(_, params)
      local query, team = split_team(params)
      local env, err = client:request("GET", base, { query = query, team = team })
      if not env then return nil, err end
      return paginate.page(env)
    end
    function r.each(self, params)
      local _, team = split_team(params)
      return paginate.each(function(query)
        query.team = team
        return self:list(query)
      end, params)
    end
  end
  if ops.get then
    function r.get(_, id, opts)
      return client:call("GET", base .. "/" .. path_id(id, name .. ".get"),
        { team = opts and opts.team })
    end
  end
  if ops.create then
    function r.create(_, body, opts)
      if ops.validator then
        local ok, err = checked(client, opts, ops.validator, body, { creating = true })
        if not ok then return nil, err end
      end
      return client:call("POST", base, { body = body, team = opts and opts.team })
    end
  end
  if ops.update then
    function r.update(_, id, body, opts)
      if ops.validator then
        local ok, err = checked(client, opts, ops.validator, body, { creating = false })
        if not ok then return nil, err end
      end
      return client:call("PUT", base .. "/" .. path_id(id, name .. ".update"),
        { body = body, team = opts and opts.team })
    end
  end
  if ops.delete then
    function r.delete(_, id, opts)
      return client:call("DELETE", base .. "/" .. path_id(id, name .. ".delete"),
        { team = opts and opts.team })
    end
  end
  return r
end

local CRUD = { list = true, get = true, create = true, update = true, delete = true }

--- 128 random bits as a UUIDv4 string.
local urandom
function M.uuid4()
  urandom = urandom or io.open("/dev/urandom", "rb")
  local b = { urandom:read(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(b))
end

function M.attach(client)
  client.clients = collection(client, "/clients", { list = true, get = true, create = true,
    update = true, delete = true, validator = validate.client }, "clients")
  client.services = collection(client, "/services", CRUD, "services")

  local payments = collection(client, "/payments", { list = true, get = true }, "payments")
  --- Older generation: POST /payments (items with `total` in units).
  function payments.create(_, body, opts)
    local ok, err = checked(client, opts, validate.payment_create, body)
    if not ok then return nil, err end
    return client:call("POST", "/payments", { body = body, team = opts and opts.team })
  end
  --- Newer generation: POST /payments/register. An idempotency key is
  -- always sent: body.idempotency_key, else opts.idempotency_key, else a
  -- fresh UUIDv4.
  function payments.register(_, body, opts)
    if type(body) ~= "table" then error("payments.register: body must be a table", 2) end
    opts = opts or {}
    local ok, err = checked(client, opts, validate.payment_register, body)
    if not ok then return nil, err end
    if body.idempotency_key == nil then
      local copy = {}
      for k, v in pairs(body) do copy[k] = v end
      copy.idempotency_key = opts.idempotency_key or M.uuid4()
      body = copy
    end
    return client:call("POST", "/payments/register", { body = body, team = opts.team })
  end
  client.payments = payments

  client.invoices = collection(client, "/invoices/income", { list = true, get = true }, "invoices")
  return client
end

return M
