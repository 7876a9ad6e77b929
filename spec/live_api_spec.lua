-- The live API as its own clients use it (issue 11, part 3): pay
-- without an RFC, atomic writes, email-only auto-create, JWT-shaped keys
-- and the team identity, send replacing recipients, event timestamps in
-- seconds, invoices refused for receptors without régimen or zip.
local gigstack = require "gigstack"
local json = require "gigstack.async.json"
local mock = require "gigstack.mock"
local support = require "support"

local check = gigstack.check

local function item(price)
  return { description = "Servicio", quantity = 1, unit_price = price, product_key = "81111500",
    unit_key = "E48", taxes = { { type = "IVA", rate = 0.16 } } }
end

local function b64url(s)
  local f = assert(io.popen("printf '%s' '" .. s .. "' | base64 -w0"))
  local out = f:read("a")
  f:close()
  return (out:gsub("=+$", ""):gsub("+", "-"):gsub("/", "_"))
end

-- HS256 by openssl itself, independent of the emulator's SHA-256
local function hs256(input, secret)
  local f = assert(io.popen("printf '%s' '" .. input .. "' | openssl dgst -sha256 -hmac '" .. secret
    .. "' -binary | base64 -w0"))
  local out = f:read("a")
  f:close()
  return (out:gsub("=+$", ""):gsub("+", "-"):gsub("/", "_"))
end

local function jwt(payload, alg, secret)
  local head = b64url('{"alg":"' .. alg .. '","typ":"JWT"}') .. "." .. b64url(payload)
  if alg == "none" then return head .. "." end
  return head .. "." .. hs256(head, secret)
end

describe("live API behaviour", function()
  it("registers a pue_invoice payment for a client without an RFC: no invoice, no 400", function()
    support.with_mock(function(gs)
      local p = check(gs.payments:register{ automation_type = "pue_invoice", payment_form = "03",
        client = { name = "Ana Sin RFC", email = "ana@ejemplo.mx",
          search = { on_key = "email", on_value = "ana@ejemplo.mx", auto_create = true } },
        items = { item(100) } })
      assert.equals("succeeded", p.status)
      assert.is_nil(p.invoice_id)
      assert.equals(0, check(gs.invoices:list()).total_results)
      assert.equals(1, check(gs.payments:list()).total_results)
    end)
  end)

  it("auto-creates a client from the email alone", function()
    support.with_mock(function(gs)
      local p = check(gs.payments:register{ automation_type = "none", payment_form = "03",
        client = { search = { on_key = "email", on_value = "solo@ejemplo.mx", auto_create = true } },
        items = { item(100) } })
      local c = check(gs.clients:get(p.client.id))
      assert.same({ "solo@ejemplo.mx", "solo@ejemplo.mx" }, { c.email, c.name })
      -- the same email finds it again
      local again = check(gs.payments:register{ automation_type = "none", payment_form = "03",
        client = { search = { on_key = "email", on_value = "SOLO@ejemplo.mx", auto_create = true } },
        items = { item(50) } })
      assert.equals(c.id, again.client.id)
    end)
  end)

  it("leaves nothing behind when a write fails: no client, no event", function()
    support.with_mock(function(gs, server)
      -- the client is auto-created, then the PPD total of 0 fails the request
      local _, err = gs.payments:register({ automation_type = "ppd_invoice_and_complement", payment_form = "03",
        client = { legal_name = "JUAN PEREZ", tax_id = "CAMA911215CJ0", tax_system = "612", address = { zip = "03100" },
          search = { on_key = "tax_id", on_value = "CAMA911215CJ0", auto_create = true } },
        items = { { description = "Gratis", quantity = 1, unit_price = 0, product_key = "81111500",
          unit_key = "E48" } } },
        { validate = false })
      assert.same({ 400, "items" }, { err.status, err.details[1].field })
      assert.equals(0, check(gs.clients:list()).total_results)
      assert.equals(0, check(gs:request("GET", "/_mock/events")).total_results)
      assert.is_nil(server.emulator.store:coll("team_mock", "clients").order[1])
    end)
  end)

  it("JWT-shaped test keys: unsigned or HS256 with the test secret; the team claim is the caller's team", function()
    support.with_mock(function(gs, server)
      local base = server.base_url
      local unsigned = jwt('{"team":"team_vendor","livemode":false,"key_id":"key_test_1"}', "none")
      local signed = jwt('{"team":"team_vendor","livemode":false}', "HS256", mock.JWT_TEST_SECRET)
      for _, key in ipairs{ unsigned, signed } do
        local v = gigstack.new{ api_key = key, base_url = base }
        assert.equals("team_vendor", v:key_claims().team)
        local me = check(v.teams:current())
        assert.equals("team_vendor", me.id)
        local c = check(v.clients:create{ legal_name = "CLIENTE VENDOR", tax_id = "SAT970701NN3" })
        assert.equals("team_vendor", c.team)
      end
      local forged = jwt('{"team":"team_vendor","livemode":false}', "HS256", "not-the-secret")
      local _, e1 = gigstack.new{ api_key = forged, base_url = base }.clients:list()
      assert.equals(401, e1.status)
      local _, e2 = gigstack.new{ api_key = jwt('{"team":"team_nobody"}', "none"), base_url = base }.clients:list()
      assert.equals(401, e2.status)
      local _, e3 = gigstack.new{ api_key = jwt('{"team":"team_vendor","livemode":true}', "none"),
        base_url = base }.clients:list()
      assert.equals(401, e3.status)
      assert.matches("livemode", e3.message)
      -- sk_test_* keep working; they carry no claims, so current() asks GET /teams
      assert.same({}, gs:key_claims())
      assert.equals("team_mock", check(gs.teams:current()).id)
    end)
  end)

  it("GET /teams puts the key's own team first; GET /teams/{id} is the full team object", function()
    support.with_mock(function(gs)
      local vendor = gigstack.new{ api_key = "sk_test_vendor", base_url = gs.base_url }
      assert.equals("team_vendor", check(vendor.teams:list()).data[1].id)
      local teams = check(gs.teams:list()).data
      assert.equals("team_mock", teams[1].id)
      local t = check(gs.teams:get("team_mock"))
      assert.is_true(t.sat.completed)
      assert.is_number(t.sat.csd_expires_at)
      assert.is_number(t.sat.connected_at)
      assert.is_true(t.sat.csd_expires_at < 1e11)   -- seconds
      assert.is_string(t.brand.alias)
      assert.is_number(t.billing.credits)
      local integ = check(gs.teams:integrations())
      assert.is_table(t.integrations.stripe)
      for name, v in pairs(integ) do
        assert.equals(v.completed, t.integrations[name].completed, name)
      end
      assert.equals(integ.sat.completed, t.sat.completed)
      -- a new team has no CSD yet: both views say so
      local nt = check(gs.teams:create{ name = "Nueva", tax_id = "SAT970701NN3" })
      local full = check(gs.teams:get(nt.id))
      assert.is_false(full.sat.completed)
      assert.equals(json.null, full.sat.csd_expires_at)
      assert.is_false(check(gs.teams:integrations{ team = nt.id }).sat.completed)
    end)
  end)

  it("send with emails replaces the recipients; events carry created in seconds", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create{ legal_name = "JUAN PEREZ", tax_id = "CAMA911215CJ0", tax_system = "612",
        email = "juan@ejemplo.mx", address = { zip = "03100" } })
      local inv = check(gs.invoices:create{ client = { id = c.id }, items = { item(100) }, payment_form = "03",
        emails = { "conta@ejemplo.mx" } })
      local sent = check(gs.invoices:send(inv.uuid, { emails = { "otro@ejemplo.mx" } }))
      assert.same({ "otro@ejemplo.mx" }, sent.recipients)
      assert.same({ "juan@ejemplo.mx", "conta@ejemplo.mx" }, check(gs.invoices:send(inv.uuid)).recipients)
      for _, ev in ipairs(check(gs:request("GET", "/_mock/events", { query = { limit = 100 } })).data) do
        assert.is_true(ev.created < 1e11, ev.type .. " created " .. ev.created)
        assert.is_true(math.abs(ev.created - os.time()) < 3600)
      end
    end)
  end)

  it("refuses an invoice for a receptor without régimen or código postal", function()
    support.with_mock(function(gs)
      local no_regimen = check(gs.clients:create{ legal_name = "JUAN PEREZ", tax_id = "CAMA911215CJ0",
        address = { zip = "03100" } })
      local no_zip = check(gs.clients:create{ legal_name = "MARIA LOPEZ", tax_id = "ROSM850315QT8",
        tax_system = "612" })
      local _, e1 = gs.invoices:create{ client = { id = no_regimen.id }, items = { item(100) }, payment_form = "03" }
      assert.same({ 400, "client.tax_system" }, { e1.status, e1.details[1].field })
      local _, e2 = gs.invoices:create{ client = { id = no_zip.id }, items = { item(100) }, payment_form = "03" }
      assert.same({ 400, "client.address.zip" }, { e2.status, e2.details[1].field })
      assert.equals(0, check(gs.invoices:list()).total_results)
      -- a register for that receptor is recorded; its invoice waits for the self-invoice portal
      local p = check(gs.payments:register{ automation_type = "pue_invoice", payment_form = "03",
        client = { id = no_zip.id }, items = { item(100) } })
      assert.same({ "succeeded", nil }, { p.status, p.invoice_id })
    end)
  end)
end)
