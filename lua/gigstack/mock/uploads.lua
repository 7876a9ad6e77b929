--- Uploads (multipart/form-data): a Constancia de Situación Fiscal PDF
-- that creates or updates a client (POST /clients/csf; the path is
-- inferred, the documentation lists "Upload CSF PDF to create or update
-- client"), the team's CSD (POST /teams/{id}/sat-connection) and the
-- manifest signature (POST /teams/{id}/manifest/sign).
--
-- What the emulator checks: a CSF's uncompressed text layer for RFC,
-- name, código postal and régimen (real CSFs are Flate-compressed; the
-- emulator has no zlib and answers 422 for them); a certificate's DER
-- structure and its notAfter, which becomes sat.csd_expires_at. It does
-- not decrypt the private key.
local multipart = require "gigstack.mock.multipart"
local wire = require "gigstack.mock.wire"
local check = require "gigstack.mock.check"
local paginate = require "gigstack.paginate"
local sat = require "gigstack.fiscal.sat"

local M = {}

-- ===== CSF text =====

local function pdf_text(bytes)
  local out = {}
  for s in bytes:gmatch("%(((\\?.-))%)%s*Tj") do
    out[#out + 1] = (s:gsub("\\([()\\])", "%1"))
  end
  return table.concat(out, "\n")
end

local ACCENTS = { ["á"] = "a", ["é"] = "e", ["í"] = "i", ["ó"] = "o", ["ú"] = "u", ["ñ"] = "n",
  ["Á"] = "a", ["É"] = "e", ["Í"] = "i", ["Ó"] = "o", ["Ú"] = "u", ["Ñ"] = "n" }

local function norm(s)
  s = s:gsub("[\195][\128-\191]", function(ch) return ACCENTS[ch] or "" end)
  return (s:lower():gsub("[^%a]", ""):gsub("^regimende", ""):gsub("^regimen", ""))
end

-- The c_RegimenFiscal code whose description the CSF's line names.
local function regimen_code(line)
  local want = norm(line)
  if want == "" then return nil end
  for _, row in ipairs(sat.catalogs.c_RegimenFiscal) do
    local have = norm(row.descripcion)
    if have == want or have:find(want, 1, true) or want:find(have, 1, true) then return row.clave end
  end
end

--- Client fields read from a CSF PDF, or nil and the fields missing.
function M.read_csf(bytes)
  local text = pdf_text(bytes)
  local function field(pattern)
    local v = text:match(pattern)
    return v and (v:gsub("%s+$", ""))
  end
  local rfc = field("RFC:%s*([A-Z&]+%d%d%d%d%d%d%w%w%w)")
  local name = field("Social:%s*([^\n]+)")
  if not name then
    local parts = { field("Nombre %(s%):%s*([^\n]+)"), field("Primer Apellido:%s*([^\n]+)"),
      field("Segundo Apellido:%s*([^\n]+)") }
    name = #parts > 0 and table.concat(parts, " ") or nil
  end
  local zip = field("digo Postal:%s*(%d%d%d%d%d)")
  local regimen_line = field("gimen:%s*([^\n]+)")
  local regimen = regimen_line and regimen_code(regimen_line)
  local missing = {}
  if not rfc then missing[#missing + 1] = { field = "file", message = "no RFC in the CSF text" } end
  if not name then missing[#missing + 1] = { field = "file", message = "no name or razón social in the CSF text" } end
  if not zip then missing[#missing + 1] = { field = "file", message = "no código postal in the CSF text" } end
  if not regimen then missing[#missing + 1] = { field = "file", message = "no known régimen in the CSF text" } end
  if #missing > 0 then return nil, missing end
  return { tax_id = rfc, legal_name = name:upper(), name = name, tax_system = regimen, address = { zip = zip } }
end

-- ===== certificates (DER) =====

local function der(s, i)
  local tag, len = s:byte(i, i + 1)
  if not tag or not len then return nil end
  local p = i + 2
  if len >= 0x80 then
    local n = len & 0x7f
    if n < 1 or n > 4 then return nil end
    len = 0
    for _ = 1, n do
      local b = s:byte(p)
      if not b then return nil end
      len, p = len * 256 + b, p + 1
    end
  end
  if p + len - 1 > #s then return nil end
  return tag, p, p + len   -- tag, content start, next element
end

--- notAfter of an X.509 certificate in DER, as unix seconds; nil if
-- the bytes are not one.
function M.cert_not_after(s)
  local tag, body = der(s, 1)              -- Certificate
  if tag ~= 0x30 then return nil end
  local tbs_tag, at = der(s, body)         -- tbsCertificate
  if tbs_tag ~= 0x30 then return nil end
  local t, _, nxt = der(s, at)
  if t == 0xA0 then at = nxt; t, _, nxt = der(s, at) end   -- [0] version
  if t ~= 0x02 then return nil end          -- serialNumber
  at = nxt
  for _ = 1, 2 do                           -- signature, issuer
    t, _, nxt = der(s, at)
    if t ~= 0x30 then return nil end
    at = nxt
  end
  local vt, vat = der(s, at)                -- validity
  if vt ~= 0x30 then return nil end
  local _, _, after_at = der(s, vat)        -- notBefore
  if not after_at then return nil end
  local nt, nstart, nend = der(s, after_at) -- notAfter
  if nt ~= 0x17 and nt ~= 0x18 then return nil end
  local text = s:sub(nstart, nend - 1)
  local y, rest
  if nt == 0x17 then
    y, rest = text:match("^(%d%d)(%d%d%d%d%d%d%d%d%d%dZ)$")
    y = y and ((tonumber(y) < 50 and 2000 or 1900) + tonumber(y))
  else
    y, rest = text:match("^(%d%d%d%d)(%d%d%d%d%d%d%d%d%d%dZ)$")
    y = tonumber(y)
  end
  if not y then return nil end
  local mo, d, h, mi, sec = rest:match("^(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)Z$")
  return (paginate.unix(string.format("%04d-%s-%sT%s:%s:%sZ", y, mo, d, h, mi, sec)))
end

-- The cer / key / password parts of a CSD or FIEL upload, checked.
local function sat_credentials(ctx)
  local parts = multipart.parse(ctx)
  local c = check.new()
  for _, name in ipairs{ "cer", "key", "password" } do
    if not parts[name] or parts[name].data == "" then c:add(name, "is required") end
  end
  c:done()
  local expires = M.cert_not_after(parts.cer.data)
  if not expires then
    wire.fail(422, "invalid_file_format", "cer: not an X.509 certificate in DER (.cer)",
      { { field = "cer", message = "not an X.509 certificate in DER (.cer)" } })
  end
  if parts.key.data:byte(1) ~= 0x30 then
    wire.fail(422, "invalid_file_format", "key: not a private key in DER (.key)",
      { { field = "key", message = "not a private key in DER (.key)" } })
  end
  return expires
end

function M.routes(route)
  route("POST", "^/clients/csf$", function(ctx)
    local parts = multipart.parse(ctx)
    local file = parts.file
    if not file then wire.fail(400, "missing_required_field", "file: is required (the CSF PDF)",
      { { field = "file", message = "is required (the CSF PDF)" } }) end
    if file.data:sub(1, 5) ~= "%PDF-" then
      wire.fail(422, "invalid_file_format", "file: is not a PDF", { { field = "file", message = "is not a PDF" } })
    end
    local fields, missing = M.read_csf(file.data)
    if not fields then
      wire.fail(422, "invalid_file_format", "file: cannot read a Constancia de Situación Fiscal ("
        .. missing[1].message .. ")", missing)
    end
    local clients = ctx.peers.clients
    local id = parts.client_id and parts.client_id.data
    if id and id ~= "" then
      local obj = clients.find(ctx, id)
      check.update(obj, function(c, copy) clients.apply(c, fields, copy, "", false) end)
      obj.is_valid = clients.invoiceable(obj)
      obj.updated_at = ctx.store:now()
      ctx:event("client.updated", obj)
      return 200, wire.object(obj, "Client updated from the CSF")
    end
    return 200, wire.object(clients.create(ctx, fields), "Client created from the CSF")
  end)
  route("POST", "^/teams/([^/]+)/sat%-connection$", function(ctx, id)
    local teams = ctx.peers.teams
    local t = teams.find(ctx, id)
    local expires = sat_credentials(ctx)
    t.sat = { completed = true, csd_expires_at = expires, connected_at = ctx.store:now() }
    ctx:event("team.updated", teams.view(t))
    return 200, wire.object(teams.view(t), "SAT certificates (CSD) uploaded")
  end)
  route("POST", "^/teams/([^/]+)/manifest/sign$", function(ctx, id)
    local t = ctx.peers.teams.find(ctx, id)
    sat_credentials(ctx)
    t.manifest = { manifest_id = ctx.store:id("manifest"), signed = true, signed_at = ctx.store:now() }
    return 200, wire.object({ team = t.id, signed = true, manifest_id = t.manifest.manifest_id,
      signed_at = t.manifest.signed_at }, "Manifest signed")
  end)
end

return M
