-- Multipart uploads: the engine sends multipart/form-data (curl mime),
-- file parts streamed from a path or given as bytes; the emulator parses
-- it with a size limit; the SDK uploads a CSF (create, then update a
-- client), a CSD (the team's SAT connection) and signs the manifest.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local support = require "support"

local check = gigstack.check

-- A one-page PDF whose text layer (uncompressed) reads like a CSF.
local function csf_pdf(lines)
  local text = {}
  for i, l in ipairs(lines) do
    text[i] = string.format("BT /F1 10 Tf 50 %d Td (%s) Tj ET", 760 - 14 * i, l)
  end
  local stream = table.concat(text, "\n")
  return "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj\n<< /Length " .. #stream
    .. " >>\nstream\n" .. stream .. "\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
end

local CSF_1 = { "CONSTANCIA DE SITUACION FISCAL", "RFC: CAMA911215CJ0", "Nombre (s): JUAN",
  "Primer Apellido: CASTRO", "Segundo Apellido: MARTINEZ", "Codigo Postal: 03100",
  "Regimen: Sueldos y Salarios e Ingresos Asimilados a Salarios" }
local CSF_2 = { "CONSTANCIA DE SITUACION FISCAL", "RFC: CAMA911215CJ0", "Nombre (s): JUAN",
  "Primer Apellido: CASTRO", "Segundo Apellido: MARTINEZ", "Codigo Postal: 44100",
  "Regimen: Regimen Simplificado de Confianza" }

local write = support.write_file

local function sh(cmd)
  local code, out, err = support.sh(cmd)
  assert(code == 0, cmd .. ": " .. err)
  return out
end

describe("multipart uploads", function()
  it("the engine sends file parts streamed from a path and parts from bytes", function()
    local path = os.tmpname()
    -- 300 000 bytes: "0123456789" repeated, so any slice is checkable
    write(path, string.rep("0123456789", 30000))
    gigstack.run(function()
      local seen
      local server = assert(http.listen{ port = 0, max_body = 2 * 1024 * 1024, handler = function(req)
        seen = { ctype = req.headers["content-type"], body = req.body }
        return 200, { ["Content-Type"] = "text/plain" }, "ok"
      end })
      local r = assert(http.request{ method = "POST", url = server.url .. "/up", parts = {
        { name = "file", path = path, type = "application/octet-stream" },
        { name = "note", data = "hola\0mundo" },
        { name = "pdf", data = "%PDF-1.4 x", filename = "csf.pdf", type = "application/pdf" },
      } })
      server.close()
      assert.equals(200, r.status)
      local boundary = seen.ctype:match("^multipart/form%-data; boundary=(%S+)$")
      assert.is_string(boundary)
      local base = path:match("[^/]+$")
      assert.truthy(seen.body:find('name="file"; filename="' .. base .. '"\r\nContent-Type: application/octet-stream'
        .. "\r\n\r\n" .. string.rep("0123456789", 30000) .. "\r\n--" .. boundary, 1, true))
      assert.truthy(seen.body:find('name="note"\r\n\r\nhola\0mundo\r\n--', 1, true))
      assert.truthy(seen.body:find('name="pdf"; filename="csf.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 x',
        1, true))
      local _, err = pcall(http.request, { method = "POST", url = server.url, parts = { { name = "x" } } })
      assert.matches("parts%[1%]: path or data is required", err)
    end, { timeout = support.WATCHDOG })
    os.remove(path)
  end)

  it("a CSF PDF upload creates a client and a second one updates it", function()
    support.with_mock(function(gs)
      local path = os.tmpname()
      write(path, csf_pdf(CSF_1))
      local c = check(gs.clients:upload_csf(path))
      assert.same({ "CAMA911215CJ0", "JUAN CASTRO MARTINEZ", "605", "03100" },
        { c.tax_id, c.legal_name, c.tax_system, c.address.zip })
      local u = check(gs.clients:upload_csf(csf_pdf(CSF_2), { update = c.id }))   -- bytes this time
      assert.same({ c.id, "626", "44100" }, { u.id, u.tax_system, u.address.zip })
      assert.equals(1, check(gs.clients:list()).total_results)
      local again = check(gs.clients:get(c.id))
      assert.same({ "626", "44100" }, { again.tax_system, again.address.zip })
      -- a PDF that is no CSF, a missing file, and an upload over the limit
      local _, e1 = gs.clients:upload_csf(csf_pdf({ "FACTURA" }))
      assert.same({ 422, "invalid_file_format" }, { e1.status, e1.code })
      local _, e2 = gs.clients:upload_csf("/nonexistent/csf.pdf")
      assert.same({ "validation", 0, "file" }, { e2.kind, e2.status, e2.details[1].field })
      assert.matches("/nonexistent/csf.pdf", e2.message)
      local _, e3 = gs.clients:upload_csf(csf_pdf(CSF_1) .. string.rep(" ", 600 * 1024))
      assert.same({ 413, "file_upload_error" }, { e3.status, e3.code })
      assert.equals(1, check(gs.clients:list()).total_results)
      os.remove(path)
    end)
  end)

  it("a CSD upload connects the team to the SAT with the certificate's expiry; the manifest is signed", function()
    local dir = sh("mktemp -d"):gsub("%s+$", "")
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. dir .. "/k.pem -subj /CN=CSD -days 1200"
      .. " -outform DER -out " .. dir .. "/c.cer 2>/dev/null")
    sh("openssl pkcs8 -topk8 -in " .. dir .. "/k.pem -outform DER -out " .. dir .. "/k.key -passout pass:12345678a")
    -- the certificate's notAfter as unix seconds, by openssl and date
    local expires = math.tointeger(tonumber(sh("date -u -d \"$(openssl x509 -inform DER -in " .. dir
      .. "/c.cer -noout -enddate | cut -d= -f2)\" +%s")))
    support.with_mock(function(gs)
      local nt = check(gs.teams:create{ name = "Nueva", tax_id = "SAT970701NN3" })
      assert.is_false(check(gs.teams:get(nt.id)).sat.completed)
      local r = check(gs.teams:upload_csd{ team = nt.id, cer = dir .. "/c.cer", key = dir .. "/k.key",
        password = "12345678a" })
      assert.is_true(r.sat.completed)
      local t = check(gs.teams:get(nt.id))
      assert.same({ true, expires }, { t.sat.completed, t.sat.csd_expires_at })
      assert.is_true(check(gs.teams:integrations{ team = nt.id }).sat.completed)
      local _, nopass = gs.teams:upload_csd{ team = nt.id, cer = dir .. "/c.cer", key = dir .. "/k.key" }
      assert.same({ "validation", "password" }, { nopass.kind, nopass.details[1].field })
      local _, badcer = gs.teams:upload_csd{ team = nt.id, cer = { bytes = "not a certificate" },
        key = dir .. "/k.key", password = "x" }
      assert.same({ 422, "cer" }, { badcer.status, badcer.details[1].field })
      local signed = check(gs.teams:sign_manifest(nt.id, { cer = dir .. "/c.cer", key = dir .. "/k.key",
        password = "12345678a" }))
      assert.is_true(signed.signed)
      assert.is_string(signed.manifest_id)
    end)
    sh("rm -r " .. dir)
  end)
end)
