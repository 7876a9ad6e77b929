--- The SAT download service ("Descarga Masiva", reference §3.6): CFDIs
-- received and issued by the team's RFC, mirrored from the SAT, with
-- their activation state machine, the daily download schedule and its
-- history. Each team gets a deterministic mirror on first use: received
-- and issued CFDIs from September to November 2026, three of them
-- without XML (xmlError `download_pending` retries fine,
-- `upstream_rejected` answers 422, `upstream_timeout` 502, every time).
-- Tests add CFDIs with POST /v2/_mock/sat/invoices.
local check = require "gigstack.mock.check"
local wire = require "gigstack.mock.wire"
local money = require "gigstack.fiscal.money"
local json = require "gigstack.async.json"

local M = {}

-- Plans (a team's `plan`, else by seed id): pro includes the service,
-- basic sells it as an add-on, free needs an upgrade.
local PLAN_OF = { team_mock = "pro", team_vendor = "basic", team_other = "free" }

local SUPPLIERS = {
  { rfc = "PDO010101AB3", name = "PAPELERIA DE OFICINA SA DE CV" },
  { rfc = "TCM970625MB1", name = "TELEFONIA CELULAR MEXICANA SA DE CV" },
  { rfc = "CFE370814QI0", name = "COMISION FEDERAL DE ELECTRICIDAD" },
  { rfc = "GAPJ800101AB1", name = "JUAN GARCIA PEREZ" },
  { rfc = "SRV150310KM2", name = "SERVIDORES EN LA NUBE SA DE CV" },
}
local CUSTOMERS = {
  { rfc = "CAMA911215CJ0", name = "CLIENTE MARKETPLACE" },
  { rfc = "ROSM850315QT8", name = "MARIA RODRIGUEZ SANTOS" },
}

-- {direction, counterpart index, issue date, subtotal cents, type, status, xmlError}
local MIRROR = {
  { "received", 1, "2026-09-04T10:15:00", 120000, "I", "Vigente" },
  { "received", 2, "2026-09-12T09:00:00", 49900, "I", "Vigente" },
  { "received", 3, "2026-09-28T18:30:00", 231050, "I", "Vigente", "download_pending" },
  { "received", 4, "2026-10-02T11:45:00", 1500000, "I", "Vigente" },
  { "received", 1, "2026-10-09T13:20:00", 86250, "I", "Vigente" },
  { "received", 2, "2026-10-12T09:00:00", 49900, "I", "Vigente", "upstream_rejected" },
  { "received", 5, "2026-10-20T16:05:00", 345000, "I", "Cancelado" },
  { "received", 5, "2026-10-31T23:10:00", 345000, "I", "Vigente", "upstream_timeout" },
  { "received", 1, "2026-11-03T10:00:00", 10000, "E", "Vigente" },
  { "received", 4, "2026-11-14T12:00:00", 1500000, "I", "Vigente" },
  { "received", 3, "2026-11-27T19:40:00", 198700, "I", "Vigente" },
  { "issued", 1, "2026-09-15T12:00:00", 500000, "I", "Vigente" },
  { "issued", 2, "2026-10-15T12:00:00", 250000, "I", "Vigente" },
  { "issued", 1, "2026-10-30T17:00:00", 0, "P", "Vigente" },
  { "issued", 2, "2026-11-15T12:00:00", 250000, "I", "Cancelado" },
}

local XML_ERRORS = {
  download_pending = "The XML is not downloaded yet; retry to fetch it",
  upstream_rejected = "Prodigia rejected the download: CFDI not found at the SAT for this RFC",
  upstream_timeout = "Prodigia did not answer in time",
}

local function plan(team)
  return team.plan or PLAN_OF[team.id] or "pro"
end

-- The team's service state, created on first use with its mirror.
-- Kept in a collection, so a failed first request rolls back the state
-- together with the mirror it seeded.
local function state(ctx)
  local st = ctx.store
  local team = st.teams[ctx.team]
  local found = st:get(ctx.team, "sat_download", "state")
  if found then return found end
  local s = { id = "state", activated = false, activation_type = json.null, fiel_uploaded = true, registered = true,
    sat_completed = true, sync_start_date = "2026-09-01",
    schedule = { enabled = false, time = "03:00", downloadTypes = json.array{ "issued", "received" },
      daysBack = 7, lastRunAt = json.null, lastRunStatus = json.null },
    history = json.array() }
  st:insert(ctx.team, "sat_download", s)
  local me = { rfc = team.tax_id, name = team.legal_name }
  local counts = { received = 0, issued = 0 }
  for _, row in ipairs(MIRROR) do
    local direction, who, date, sub, kind, status, xml_error = table.unpack(row)
    local other = (direction == "received" and SUPPLIERS or CUSTOMERS)[who]
    local taxes = kind == "P" and 0 or sub * 16 // 100
    M.add(ctx, { direction = direction, invoice_type = kind, status = status, issue_date = date,
      issuer = direction == "received" and other or me, receiver = direction == "received" and me or other,
      subtotal = money.json(sub), total = money.json(sub + taxes), xmlError = xml_error })
    counts[direction] = counts[direction] + 1
  end
  for i, dir in ipairs{ "received", "issued" } do
    s.history[#s.history + 1] = { id = st:id("satdl"), rfcType = dir, startDate = "2026-09-01",
      endDate = "2026-11-30", status = "completed", invoiceCount = counts[dir], processedCount = counts[dir],
      source = i == 1 and "schedule" or "manual", createdAt = "2026-12-01T03:00:00Z" }
  end
  return s
end

--- Add a mirrored CFDI to the team's mirror (seed and the test hook).
function M.add(ctx, f)
  local st = ctx.store
  local uuid = f.uuid or st:uuid()
  local date = f.issue_date
  local inv = { uuid = uuid, id = uuid, direction = f.direction, invoice_type = f.invoice_type or "I",
    issuer = f.issuer, receiver = f.receiver, subtotal = f.subtotal, total = f.total,
    currency = f.currency or "MXN", exchange_rate = 1, status = f.status or "Vigente",
    series = f.series or "A", folio = f.folio or tostring(#st:coll(ctx.team, "sat_invoices").order + 1),
    issue_date = date, stamp_date = date, cancellation_date = f.status == "Cancelado" and date or json.null,
    pac_rfc = "SPR190613I52", version = "4.0", certificate_number = "00001000000509465028",
    hasXml = f.xmlError == nil, has_xml = f.xmlError == nil, xmlError = f.xmlError or json.null,
    resource_status = f.xmlError == nil and "xml_downloaded" or "metadata_only",
    created_at = st:now() }
  st:insert(ctx.team, "sat_invoices", inv)
  return inv
end

local function summary(inv)
  return { uuid = inv.uuid, direction = inv.direction, invoice_type = inv.invoice_type,
    issuer = inv.issuer, receiver = inv.receiver, total = inv.total, currency = inv.currency,
    status = inv.status, resource_status = inv.resource_status, issue_date = inv.issue_date,
    hasXml = inv.hasXml, xmlError = inv.xmlError }
end

local function active(ctx)
  local s = state(ctx)
  if not s.activated then
    wire.fail(403, "operation_not_allowed", "the SAT download service is not active for team " .. ctx.team
      .. ": POST /v2/invoices/download/activate")
  end
  return s
end

local function find(ctx, uuid)
  active(ctx)
  return ctx:find("sat_invoices", uuid, "SAT CFDI")
end

local function status_of(ctx)
  local s = state(ctx)
  local p = plan(ctx.store.teams[ctx.team])
  local status = s.activated and "active" or p == "pro" and "needs_activation"
    or p == "basic" and "needs_addon" or "needs_upgrade"
  return { status = status, planIncludesFeature = p == "pro", isActivated = s.activated,
    pricing = { perDownload = json.raw("0.20"), addonMonthly = json.null } }
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k = { (n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63 }
    out[#out + 1] = B64:sub(k[1] + 1, k[1] + 1) .. B64:sub(k[2] + 1, k[2] + 1)
      .. (b and B64:sub(k[3] + 1, k[3] + 1) or "=") .. (c and B64:sub(k[4] + 1, k[4] + 1) or "=")
  end
  return table.concat(out)
end

local DIRECTIONS = { "received", "issued" }
local SAT_STATUSES = { "Vigente", "Cancelado" }

local function list(ctx)
  active(ctx)
  local q = ctx.query
  local c = check.new()
  c:one_of(q, "direction", "direction", DIRECTIONS)
  c:one_of(q, "status", "status", SAT_STATUSES)
  local types
  if q.invoice_type and q.invoice_type ~= "" then
    types = {}
    for t in q.invoice_type:gmatch("[^,]+") do
      if not ({ I = 1, E = 1, P = 1, N = 1, T = 1 })[t] then
        c:add("invoice_type", "must be I, E, P, N or T (comma-separated)")
      end
      types[t] = true
    end
  end
  c:done()
  -- from / to compare with issue_date as strings, as the SAT service does
  return ctx:list("sat_invoices", function(inv)
    return (not q.direction or inv.direction == q.direction) and (not q.status or inv.status == q.status)
      and (not types or types[inv.invoice_type]) and (not q.from or inv.issue_date >= q.from)
      and (not q.to or inv.issue_date <= q.to)
      and (not q.issuer_rfc or inv.issuer.rfc == q.issuer_rfc:upper())
      and (not q.receiver_rfc or inv.receiver.rfc == q.receiver_rfc:upper())
  end, { key = function(inv) return inv.issue_date end, view = summary })
end

local function set_schedule(ctx)
  local s = state(ctx)
  local body = ctx:body()
  local c = check.new()
  local next_s = {}
  for k, v in pairs(s.schedule) do next_s[k] = v end
  if body.enabled ~= nil then
    if type(body.enabled) ~= "boolean" then c:add("enabled", "must be true or false")
    else next_s.enabled = body.enabled end
  end
  if body.time ~= nil then
    local h, m = tostring(body.time):match("^(%d%d):(%d%d)$")
    if type(body.time) ~= "string" or not h or tonumber(h) > 23 or tonumber(m) > 59 then
      c:add("time", "must be HH:mm (00:00 to 23:59)")
    else
      next_s.time = body.time
    end
  end
  if body.download_types ~= nil then
    local types = body.download_types
    if type(types) ~= "table" or #types == 0 then
      c:add("download_types", "must be a non-empty array of issued, received")
    else
      local out = json.array()
      for i, t in ipairs(types) do
        if t ~= "issued" and t ~= "received" then c:add("download_types[" .. i .. "]", "must be issued or received")
        else out[#out + 1] = t end
      end
      next_s.downloadTypes = out
    end
  end
  if body.days_back ~= nil then
    local d = body.days_back
    if math.type(d) == "float" and d == math.floor(d) then d = math.tointeger(d) end
    if math.type(d) ~= "integer" or d < 1 or d > 90 then c:add("days_back", "must be an integer from 1 to 90")
    else next_s.daysBack = d end
  end
  c:done()
  s.schedule = next_s
  return 200, wire.object(M.schedule_view(s), "Schedule updated")
end

function M.schedule_view(s)
  return { fiel_uploaded = s.fiel_uploaded, registered = s.registered, sat_completed = s.sat_completed,
    sync_start_date = s.sync_start_date, schedule = s.schedule,
    prodigia = { synced = true, sync_from = s.sync_start_date, last_sync = json.null, monthly_cap = 5000,
      message = json.null } }
end

function M.routes(route)
  route("GET", "^/invoices/sat$", function(ctx) return 200, list(ctx) end)
  route("GET", "^/invoices/sat/([^/]+)$", function(ctx, uuid) return 200, wire.object(find(ctx, uuid)) end)
  route("POST", "^/invoices/sat/([^/]+)/retry%-xml$", function(ctx, uuid)
    local inv = find(ctx, uuid)
    if inv.hasXml then
      return 200, wire.object({ credit_charged = false, uuid = uuid }, "The XML is already downloaded")
    end
    if inv.xmlError == "upstream_rejected" then
      wire.fail(422, "external_service_error", XML_ERRORS.upstream_rejected)
    elseif inv.xmlError == "upstream_timeout" then
      wire.fail(502, "external_service_error", XML_ERRORS.upstream_timeout)
    end
    inv.hasXml, inv.has_xml, inv.xmlError, inv.resource_status = true, true, json.null, "xml_downloaded"
    return 200, wire.object({ credit_charged = true, uuid = uuid }, "XML downloaded")
  end)
  route("POST", "^/invoices/sat/([^/]+)/pdf$", function(ctx, uuid)
    local inv = find(ctx, uuid)
    if not inv.hasXml then
      wire.fail(409, "business_rule_violation", "CFDI " .. uuid .. " has no XML yet (" .. tostring(inv.xmlError)
        .. "): POST /v2/invoices/sat/" .. uuid .. "/retry-xml first")
    end
    local pdf = ctx.peers.invoices.pdf({ invoice_type = inv.invoice_type, uuid = inv.uuid, series = inv.series,
      folio_number = inv.folio, client = { tax_id = inv.receiver.rfc }, total = inv.total,
      currency = inv.currency, status = inv.status })
    return 200, { message = "PDF generated", pdf = base64(pdf), uuid = uuid }
  end)
  route("GET", "^/invoices/download/activate/status$", function(ctx)
    return 200, wire.object(status_of(ctx))
  end)
  route("POST", "^/invoices/download/activate$", function(ctx)
    local s = state(ctx)
    local st = status_of(ctx)
    if s.activated then wire.fail(409, "resource_conflict", "the SAT download service is already active") end
    if st.status == "needs_upgrade" then
      wire.fail(402, "business_rule_violation", "the team's plan does not offer the SAT download service: upgrade it")
    end
    s.activated = true
    s.activation_type = st.status == "needs_addon" and "addon" or "included"
    return 200, wire.object({ type = s.activation_type }, "SAT download service activated")
  end)
  route("POST", "^/invoices/download/deactivate$", function(ctx)
    local s = state(ctx)
    if not s.activated then wire.fail(409, "resource_conflict", "the SAT download service is not active") end
    s.activated = false
    return 200, wire.object({ isActivated = false }, "SAT download service deactivated")
  end)
  route("GET", "^/invoices/download/schedule$", function(ctx)
    return 200, wire.object(M.schedule_view(state(ctx)))
  end)
  route("PUT", "^/invoices/download/schedule$", set_schedule)
  route("GET", "^/invoices/download/schedule/history$", function(ctx)
    return 200, wire.object({ history = state(ctx).history })
  end)
  -- test hook: add a mirrored CFDI {direction, issuer, receiver, total, issue_date, ...}
  route("POST", "^/_mock/sat/invoices$", function(ctx)
    state(ctx)
    local body = ctx:body()
    local c = check.new()
    c:one_of(body, "direction", "direction", DIRECTIONS)
    if not check.present(body.direction) then c:add("direction", "is required") end
    c:string(body, "issue_date", "issue_date", true)
    c:object(body, "issuer", "issuer", true)
    c:object(body, "receiver", "receiver", true)
    c:done()
    return 200, wire.object(M.add(ctx, body), "SAT CFDI added")
  end)
end

return M
