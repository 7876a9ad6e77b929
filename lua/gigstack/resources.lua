--- Resource objects: every gigstack API operation, with the API's own
-- names. One table (M.OPERATIONS) declares them; methods are built from
-- it, and docs/reference.md is checked against it by a spec. Every call
-- takes an options table last whose `team` overrides the client's.
local paginate = require "gigstack.paginate"
local http = require "gigstack.async.http"
-- the fiscal rules load with the first body checked (start-up time)
local function validate() return require "gigstack.fiscal.validate" end
local errors = require "gigstack.async.errors"

local M = {}

local urandom
--- 128 random bits as a UUIDv4 string.
function M.uuid4()
  urandom = urandom or io.open("/dev/urandom", "rb")
  local b = { urandom:read(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(b))
end

-- Operation kinds, i.e. the method's signature:
--   list     (params)              -> page; also adds `each(params)`
--   search   (q, params)           -> page
--   get      (id..., opts)         -> object
--   create   (body, opts)          -> object      (POST, no id)
--   update   (id..., body, opts)   -> object      (body after the ids)
--   action   (id..., body?, opts)  -> object      (body optional)
--   call     (opts)                -> object      (no id, no body)
-- Path segments "{}" take the ids in order.
M.OPERATIONS = {
  { "clients", "list", "list", "GET", "/clients" },
  { "clients", "get", "get", "GET", "/clients/{}" },
  { "clients", "create", "create", "POST", "/clients", validator = "client" },
  { "clients", "update", "update", "PUT", "/clients/{}", validator = "client" },
  { "clients", "delete", "get", "DELETE", "/clients/{}" },
  { "clients", "search", "search", "GET", "/clients/search" },
  { "clients", "validate", "action", "POST", "/clients/validate/{}" },
  { "clients", "portal", "create", "POST", "/clients/customerportal" },
  { "clients", "stamp_pending_receipts", "action", "POST", "/clients/{}/stamp-pending-receipts" },

  { "services", "list", "list", "GET", "/services" },
  { "services", "get", "get", "GET", "/services/{}" },
  { "services", "create", "create", "POST", "/services" },
  { "services", "update", "update", "PUT", "/services/{}" },
  { "services", "delete", "get", "DELETE", "/services/{}" },

  { "invoices", "list", "list", "GET", "/invoices/income" },
  { "invoices", "get", "get", "GET", "/invoices/income/{}" },
  { "invoices", "create", "create", "POST", "/invoices/income", validator = "invoice" },
  { "invoices", "files", "get", "GET", "/invoices/{}/files" },
  { "invoices", "send", "action", "POST", "/invoices/{}/send" },
  { "invoices", "search", "search", "GET", "/invoices/search" },
  { "invoices", "cancel", "action", "DELETE", "/invoices/{}" },
  { "invoices", "errors", "list", "GET", "/invoices/errors" },
  { "egress", "list", "list", "GET", "/invoices/egress" },
  { "egress", "get", "get", "GET", "/invoices/egress/{}" },
  { "egress", "create", "create", "POST", "/invoices/egress", validator = "invoice" },
  { "complements", "list", "list", "GET", "/invoices/payment" },
  { "complements", "get", "get", "GET", "/invoices/payment/{}" },
  { "complements", "create", "create", "POST", "/invoices/payment", idempotent = true },
  { "drafts", "list", "list", "GET", "/invoices/draft" },
  { "drafts", "stamp", "action", "POST", "/invoices/draft/{}/stamp" },

  { "payments", "list", "list", "GET", "/payments" },
  { "payments", "get", "get", "GET", "/payments/{}" },
  { "payments", "create", "create", "POST", "/payments", validator = "payment_create" },
  { "payments", "request", "create", "POST", "/payments/request", validator = "payment_request",
    idempotent = true },
  { "payments", "register", "create", "POST", "/payments/register", validator = "payment_register",
    idempotent = true },
  { "payments", "mark_paid", "action", "POST", "/payments/{}/paid" },
  { "payments", "refund", "action", "POST", "/payments/{}/refund" },
  { "payments", "cancel", "action", "DELETE", "/payments/{}" },
  { "payments", "search", "search", "GET", "/payments/search" },

  { "receipts", "list", "list", "GET", "/receipts" },
  { "receipts", "get", "get", "GET", "/receipts/{}" },
  { "receipts", "create", "create", "POST", "/receipts", idempotent = true },
  { "receipts", "update", "update", "PUT", "/receipts/{}" },
  { "receipts", "stamp", "action", "POST", "/receipts/{}/stamp" },
  { "receipts", "cancel", "action", "POST", "/receipts/{}/cancel" },
  { "receipts", "delete", "get", "DELETE", "/receipts/{}" },

  { "teams", "list", "list", "GET", "/teams" },
  { "teams", "get", "get", "GET", "/teams/{}" },
  { "teams", "create", "create", "POST", "/teams" },
  { "teams", "update", "update", "PUT", "/teams/{}" },
  { "teams", "integrations", "call", "GET", "/teams/integrations" },
  { "teams", "series", "get", "GET", "/teams/{}/series" },
  { "teams", "create_series", "update", "POST", "/teams/{}/series" },
  { "teams", "update_series", "update", "PUT", "/teams/{}/series/{}" },
  { "teams", "settings", "update", "PUT", "/teams/{}/settings" },
  { "teams", "add_member", "update", "POST", "/teams/{}/add-member" },
  { "teams", "remove_member", "update", "POST", "/teams/{}/remove-member" },
  { "teams", "onboarding_url", "get", "GET", "/teams/{}/onboarding-url" },

  { "users", "list", "list", "GET", "/users" },
  { "users", "get", "get", "GET", "/users/{}" },
  { "users", "create", "create", "POST", "/users" },
  { "users", "update", "update", "PUT", "/users/{}" },
  { "users", "reset_password", "create", "POST", "/users/reset-password" },
  { "users", "login_link", "create", "POST", "/users/login-link" },

  { "webhooks", "list", "list", "GET", "/webhooks" },
  { "webhooks", "get", "get", "GET", "/webhooks/{}" },
  { "webhooks", "create", "create", "POST", "/webhooks" },
  { "webhooks", "update", "update", "PUT", "/webhooks/{}" },
  { "webhooks", "delete", "get", "DELETE", "/webhooks/{}" },

  -- SAT download service (Descarga Masiva): mirrored CFDIs, activation, schedule
  { "sat_invoices", "list", "list", "GET", "/invoices/sat", cursor = "starting_after", sat_dates = true },
  { "sat_invoices", "get", "get", "GET", "/invoices/sat/{}" },
  { "sat_invoices", "retry_xml", "action", "POST", "/invoices/sat/{}/retry-xml" },
  { "sat_invoices", "pdf", "action", "POST", "/invoices/sat/{}/pdf" },
  { "sat_download", "status", "call", "GET", "/invoices/download/activate/status" },
  { "sat_download", "activate", "call", "POST", "/invoices/download/activate" },
  { "sat_download", "deactivate", "call", "POST", "/invoices/download/deactivate" },
  { "sat_download", "schedule", "call", "GET", "/invoices/download/schedule" },
  { "sat_download", "set_schedule", "create", "PUT", "/invoices/download/schedule" },
  { "sat_download", "history", "call", "GET", "/invoices/download/schedule/history" },

  { "catalogs", "list", "list", "GET", "/catalogs" },
  { "catalogs", "get", "get", "GET", "/catalogs/{}" },

  { "ping", "get", "call", "GET", "/ping" },
  { "ping", "post", "call", "POST", "/ping" },
  { "ping", "put", "call", "PUT", "/ping" },
  { "ping", "delete", "call", "DELETE", "/ping" },
}

-- Keys of the options table every method takes last.
local OPTION_KEYS = { team = true, timeout = true, deadline = true, retries = true, validate = true,
  idempotency_key = true, headers = true }

--- Is t an options table (for actions whose body is optional)?
function M.only_options(t)
  if type(t) ~= "table" or next(t) == nil then return false end
  for k in pairs(t) do
    if not OPTION_KEYS[k] then return false end
  end
  return true
end

local VALIDATORS = {
  client = function(body, creating) return validate().client(body, { creating = creating }) end,
  invoice = function(body) return validate().invoice(body) end,
  payment_create = function(body) return validate().payment_create(body) end,
  payment_register = function(body) return validate().payment_register(body) end,
  payment_request = function(body) return validate().payment_register(body, { request = true }) end,
}

local function nslots(path)
  local n = 0
  for _ in path:gmatch("{}") do n = n + 1 end
  return n
end

local function fill(path, ids, where)
  local i = 0
  return (path:gsub("{}", function()
    i = i + 1
    local id = ids[i]
    if type(id) ~= "string" or id == "" then
      error(where .. ": argument " .. i .. " (id) must be a non-empty string", 4)
    end
    return http.escape(id)
  end))
end

local function split_team(params)
  local query, team = {}, nil
  for k, v in pairs(params or {}) do
    if k == "team" then team = v
    elseif not OPTION_KEYS[k] then query[k] = v end
  end
  return query, team
end

-- Add an idempotency key to a body that supports one: the body's own,
-- else opts.idempotency_key, else a fresh UUIDv4 (kept on retries).
local function with_key(body, opts)
  if type(body) ~= "table" or body.idempotency_key ~= nil then return body end
  local copy = {}
  for k, v in pairs(body) do copy[k] = v end
  copy.idempotency_key = opts.idempotency_key or M.uuid4()
  return copy
end

local function build(client, op)
  local resource, name, kind, method, path = op[1], op[2], op[3], op[4], op[5]
  local where = resource .. ":" .. name
  local slots = nslots(path)
  local function send(ids, body, opts)
    opts = opts or {}
    if op.validator and body ~= nil and client.validate ~= false and opts.validate ~= false then
      local ok, err = VALIDATORS[op.validator](body, kind == "create")
      if not ok then return nil, err end
    end
    if op.idempotent then body = with_key(body, opts) end
    return client:call(method, fill(path, ids, where), { body = body, team = opts.team,
      timeout = opts.timeout, deadline = opts.deadline, retries = opts.retries, headers = opts.headers,
      idempotency_key = opts.idempotency_key })
  end
  if kind == "list" then
    local function list(params)
      local query, team = split_team(params)
      local qerr
      query, qerr = paginate.query(query)
      if query and op.sat_dates then query, qerr = paginate.sat_query(query) end
      if not query then qerr.method, qerr.path = method, path; return nil, qerr end
      local env, err = client:request(method, fill(path, {}, where), { query = query, team = team })
      if not env then return nil, err end
      return paginate.page(env)
    end
    return function(_, params) return list(params) end, function(_, params)
      local _, team = split_team(params)
      return paginate.each(function(query)
        query.team = team
        return list(query)
      end, params, op.cursor)
    end
  elseif kind == "search" then
    return function(_, q, params)
      if type(q) ~= "string" or q == "" then error(where .. ": q must be a non-empty string", 2) end
      local query, team = split_team(params)
      local qerr
      query, qerr = paginate.query(query)
      if not query then qerr.method, qerr.path = method, path; return nil, qerr end
      query.q = q
      local env, err = client:request(method, path, { query = query, team = team })
      if not env then return nil, err end
      return paginate.page(env)
    end
  elseif kind == "create" then
    return function(_, body, opts)
      if type(body) ~= "table" then error(where .. ": body must be a table", 2) end
      return send({}, body, opts)
    end
  elseif kind == "call" then
    return function(_, opts) return send({}, nil, opts) end
  elseif kind == "get" then
    return function(_, ...)
      local args = { ... }
      return send(args, nil, args[slots + 1])
    end
  elseif kind == "update" then
    return function(_, ...)
      local args = { ... }
      local body = args[slots + 1]
      if type(body) ~= "table" then error(where .. ": body must be a table", 2) end
      return send(args, body, args[slots + 2])
    end
  else -- action: ids, then an optional body, then options
    return function(_, ...)
      local args = { ... }
      local body, opts = args[slots + 1], args[slots + 2]
      if opts == nil and M.only_options(body) then body, opts = nil, body end
      return send(args, body, opts)
    end
  end
end

-- ===== multipart uploads =====

local function invalid(field, message)
  return nil, errors.new{ kind = "validation", status = 0, message = field .. ": " .. message,
    details = { { field = field, rule = message, message = message } } }
end

--- A file part from `v`: {path = p} or {bytes = b}, or a string that is
-- a path when it is short, printable text, else the bytes themselves. A
-- path is only checked here; curl streams it while sending.
function M.file_part(field, v, ctype, filename)
  local path, bytes
  if type(v) == "table" then
    path, bytes = v.path, v.bytes
  elseif type(v) == "string" then
    if #v < 4096 and not v:find("[%z\1-\31\127-\255]") then path = v else bytes = v end
  end
  if type(path) == "string" then
    local f, err = io.open(path, "rb")
    if not f then return invalid(field, "cannot open " .. tostring(err)) end
    f:close()
    return { name = field, path = path, type = ctype }
  elseif type(bytes) == "string" then
    return { name = field, data = bytes, type = ctype, filename = filename }
  end
  return invalid(field, "must be a file path, its bytes, {path = …} or {bytes = …}")
end

local function upload(client, path, parts, opts)
  opts = opts or {}
  return client:call("POST", path, { parts = parts, team = opts.team, timeout = opts.timeout,
    deadline = opts.deadline, headers = opts.headers })
end

--- gs.clients:upload_csf(path_or_bytes, {update = client_id}): a
-- Constancia de Situación Fiscal PDF creates a client, or updates one.
function M.upload_csf(clients, csf, opts)
  opts = opts or {}
  local part, err = M.file_part("file", csf, "application/pdf", "csf.pdf")
  if not part then return nil, err end
  local parts = { part }
  if opts.update ~= nil then
    if type(opts.update) ~= "string" or opts.update == "" then return invalid("update", "must be a client id") end
    parts[2] = { name = "client_id", data = opts.update }
  end
  return upload(clients.client, "/clients/csf", parts, opts)
end

-- The CSD (or FIEL) trio as parts: cer, key (paths or bytes), password.
local function sat_parts(args)
  if type(args) ~= "table" then return invalid("args", "must be a table {cer, key, password}") end
  local cer, err = M.file_part("cer", args.cer, "application/pkix-cert", "certificado.cer")
  if not cer then return nil, err end
  local key
  key, err = M.file_part("key", args.key, "application/octet-stream", "llave.key")
  if not key then return nil, err end
  if type(args.password) ~= "string" or args.password == "" then
    return invalid("password", "is required (the private key's password)")
  end
  return { cer, key, { name = "password", data = args.password } }
end

-- The team of a team call: explicit, else the client's, else the key's.
local function team_id(teams, explicit)
  if explicit then return explicit end
  if teams.client.team then return teams.client.team end
  local t, err = M.current_team(teams)
  if not t then return nil, err end
  return t.id
end

--- gs.teams:upload_csd{team, cer, key, password}: the CSD (sello
-- digital) that stamps the team's CFDIs; returns the team.
function M.upload_csd(teams, args, opts)
  local parts, err = sat_parts(args)
  if not parts then return nil, err end
  local id
  id, err = team_id(teams, args.team)
  if not id then return nil, err end
  return upload(teams.client, "/teams/" .. http.escape(id) .. "/sat-connection", parts, opts)
end

--- gs.teams:sign_manifest(team_id, {cer, key, password}): sign the
-- manifest with the team's FIEL.
function M.sign_manifest(teams, id, args, opts)
  if type(id) ~= "string" or id == "" then
    error("teams:sign_manifest: argument 1 (id) must be a non-empty string", 2)
  end
  local parts, err = sat_parts(args)
  if not parts then return nil, err end
  return upload(teams.client, "/teams/" .. http.escape(id) .. "/manifest/sign", parts, opts)
end

--- gs.teams:current(opts): the key's own team, resolved as gigstack's
-- CLI does: the JWT's `team` claim and GET /teams/{team}; else (no claim,
-- or that call fails) the GET /teams entry with that id, else the first.
function M.current_team(teams, opts)
  local client = teams.client
  local team = client:key_claims().team
  if team then
    local t = teams:get(team, opts)
    if t then return t end
  end
  local page, err = teams:list(opts)
  if not page then return nil, err end
  for _, t in ipairs(page.data) do
    if t.id == team then return t end
  end
  if page.data[1] then return page.data[1] end
  return nil, errors.new{ kind = "not_found", status = 0, message = "no team is visible to this API key",
    method = "GET", path = "/teams" }
end

--- Attach every resource to `client` (gs.clients, gs.payments, ...).
function M.attach(client)
  for _, op in ipairs(M.OPERATIONS) do
    local r = client[op[1]]
    if not r then
      r = { client = client }
      client[op[1]] = r
    end
    local fn, each = build(client, op)
    r[op[2]] = fn
    if each then r.each = r.each or each end
  end
  -- income invoices also as gs.invoices.income, the API's own grouping
  client.invoices.income = client.invoices
  client.invoices.egress = client.egress
  client.invoices.complements = client.complements
  client.invoices.drafts = client.drafts
  client.invoices.sat = client.sat_invoices
  client.teams.current = M.current_team
  client.teams.upload_csd = M.upload_csd
  client.teams.sign_manifest = M.sign_manifest
  client.clients.upload_csf = M.upload_csf
  return client
end

return M
