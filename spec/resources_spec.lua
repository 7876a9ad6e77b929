-- Every SDK operation against the emulator, with its error paths.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local support = require "support"

local check = gigstack.check

local function client_body(rfc)
  return { legal_name = "COMERCIALIZADORA SA", tax_id = rfc or "SAT970701NN3", tax_system = "601",
    email = "compras@ejemplo.mx", address = { zip = "06600" }, use = "G03" }
end

local function item(price, extra)
  local it = { description = "Servicio", quantity = 1, unit_price = price or 100, product_key = "81111500",
    unit_key = "E48", taxes = { { type = "IVA", rate = 0.16 } } }
  for k, v in pairs(extra or {}) do it[k] = v end
  return it
end

describe("resources", function()
  it("clients: list, get, create, update, delete, search, validate, portal, stamp pending receipts", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      assert.equals(c.id, check(gs.clients:get(c.id)).id)
      assert.equals("nuevo@ejemplo.mx", check(gs.clients:update(c.id, { email = "nuevo@ejemplo.mx" })).email)
      assert.equals(1, check(gs.clients:search("comercial")).total_results)
      assert.equals(0, check(gs.clients:search("nadie")).total_results)
      local v = check(gs.clients:validate(c.id))
      assert.is_true(v.is_valid)
      local portal = check(gs.clients:portal{ id = c.id })
      assert.matches("^https://", portal.url)
      assert.is_true(portal.expires_at > 0)
      check(gs.receipts:create{ client = { id = c.id }, items = { item(50) } })
      local stamped = check(gs.clients:stamp_pending_receipts(c.id))
      assert.equals(1, #stamped.stamped)
      assert.equals(1, check(gs.invoices:list()).total_results)
      check(gs.clients:delete(c.id))
      local _, e404 = gs.clients:get(c.id)
      assert.equals(404, e404.status)
      local _, eval = gs.clients:update("client_x", { tax_system = "999" })
      assert.equals("validation", eval.kind)
      assert.equals("tax_system", eval.details[1].field)
      local _, eportal = gs.clients:portal{ email = "nadie@ejemplo.mx" }
      assert.equals(404, eportal.status)
    end)
  end)

  it("services: list, get, create, update, delete", function()
    support.with_mock(function(gs)
      local s = check(gs.services:create{ description = "Consultoría", unit_price = 1500,
        product_key = "81111500", unit_key = "E48", sku = "CONS-1" })
      assert.equals(1500, check(gs.services:get(s.id)).unit_price)
      assert.equals(1800, check(gs.services:update(s.id, { unit_price = 1800 })).unit_price)
      assert.equals(1, check(gs.services:list()).total_results)
      check(gs.services:delete(s.id))
      assert.equals(404, select(2, gs.services:get(s.id)).status)
      local _, err = gs.services:create{ description = "x", unit_price = 1, product_key = "123", unit_key = "E48" }
      assert.equals("product_key", err.details[1].field)
    end)
  end)

  it("invoices: create, list, get, files (served XML with the figures), send, search, cancel rules", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local inv = check(gs.invoices:create{ client = { id = c.id }, items = { item(1000) }, payment_form = "03",
        payment_method = "PUE", use = "G03" })
      assert.same({ "valid", "I", 1160 }, { inv.status, inv.invoice_type, inv.total })
      assert.equals(inv.uuid, check(gs.invoices:get(inv.uuid)).uuid)
      local files = check(gs.invoices:files(inv.uuid))
      local xml = assert(http.request{ url = files.xml })
      assert.equals(200, xml.status)
      assert.matches('Version="4.0"', xml.body)
      assert.matches('Total="1160.00"', xml.body)
      assert.truthy(xml.body:find('UUID="' .. inv.uuid .. '"', 1, true))
      local pdf = assert(http.request{ url = files.pdf })
      assert.matches("^%%PDF%-1%.4", pdf.body)
      local sent = check(gs.invoices:send(inv.uuid, { emails = { "a@ejemplo.mx" } }))
      assert.same({ "a@ejemplo.mx" }, sent.recipients)
      assert.equals(1, check(gs.invoices:search(c.tax_id)).total_results)
      local _, e01 = gs.invoices:cancel(inv.uuid, { motive = "01" })
      assert.equals("replacement", e01.details[1].field)
      local repl = check(gs.invoices:create{ client = { id = c.id }, items = { item(1000) }, payment_form = "03" })
      local cancelled = check(gs.invoices:cancel(inv.uuid, { motive = "01", replacement = repl.uuid }))
      assert.equals("cancelled", cancelled.status)
      assert.equals(409, select(2, gs.invoices:cancel(inv.uuid, { motive = "02" })).status)
      assert.equals(1, check(gs.invoices:list{ status = "cancelled" }).total_results)
      local _, eppd = gs.invoices:create{ client = { id = c.id }, items = { item(1) }, payment_form = "03",
        payment_method = "PPD" }
      assert.equals("payment_form", eppd.details[1].field)
      assert.is_table(check(gs.invoices:errors()).data)
      assert.equals(404, select(2, gs:request("GET", "/invoices/complements")).status)
    end)
  end)

  it("egress invoices: create against an income invoice, list, get", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local inv = check(gs.invoices:create{ client = { id = c.id }, items = { item(1000) }, payment_form = "03" })
      local _, err = gs.egress:create({ client = { id = c.id }, items = { item(100) }, payment_form = "03" })
      assert.equals("related_documents", err.details[1].field)
      local e = check(gs.invoices.egress:create{ client = { id = c.id }, items = { item(100) }, payment_form = "03",
        related_documents = { { uuid = inv.uuid, relation = "01" } } })
      assert.same({ "E", 116 }, { e.invoice_type, e.total })
      assert.equals(e.uuid, check(gs.egress:get(e.uuid)).uuid)
      assert.equals(1, check(gs.egress:list()).total_results)
    end)
  end)

  it("payments: request a PPD payment, mark it paid, the complement reduces the balance to zero", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local p = check(gs.payments:request{ client = { id = c.id }, items = { item(500) },
        automation_type = "ppd_invoice_and_complement", payment_form = "99" })
      assert.equals("requires_payment_method", p.status)
      local inv = check(gs.invoices:get(p.invoice_id))
      assert.same({ "PPD", "99", 580 }, { inv.payment_method, inv.payment_form, inv.last_balance })
      local paid = check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
      assert.equals("succeeded", paid.status)
      local reps = check(gs.complements:list{ invoice_id = inv.uuid })
      assert.equals(1, reps.total_results)
      local rep = check(gs.complements:get(reps.data[1].uuid))
      assert.same({ "P", 1, 580, 0 }, { rep.invoice_type, rep.payment.installment, rep.payment.previous_balance,
        rep.payment.remaining_balance })
      assert.equals(0, check(gs.invoices:get(inv.uuid)).last_balance)
      assert.equals(409, select(2, gs.payments:mark_paid(p.id, { payment_form = "03" })).status)
    end)
  end)

  it("payments: register, refund partly then fully, cancel rules, search, list filters", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local p = check(gs.payments:register{ client = { id = c.id }, items = { item(1000) },
        automation_type = "pue_invoice", payment_form = "04", metadata = { order = "A-77" } })
      local r1 = check(gs.payments:refund(p.id, { amount = 160, reason = "parcial" }))
      assert.same({ 160, "succeeded", 1 }, { r1.total_refunded, r1.status, #r1.refunds })
      local _, over = gs.payments:refund(p.id, { amount = 2000 })
      assert.equals("amount", over.details[1].field)
      assert.equals("refunded", check(gs.payments:refund(p.id)).status)
      assert.equals(409, select(2, gs.payments:cancel(p.id)).status)
      local link = check(gs.payments:request{ client = { id = c.id }, items = { item(10) } })
      assert.equals("cancelled", check(gs.payments:cancel(link.id)).status)
      assert.equals(1, check(gs.payments:search("A-77")).total_results)
      assert.equals(1, check(gs.payments:list{ status = "cancelled" }).total_results)
      assert.equals(2, check(gs.payments:list{ client_id = c.id }).total_results)
      assert.equals(404, select(2, gs.payments:get("payment_nope")).status)
    end)
  end)

  it("payments: automation receipt creates a receipt; register replays its idempotency key", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local body = { client = { id = c.id }, items = { item(100) }, automation_type = "receipt", payment_form = "01" }
      local p = check(gs.payments:register(body, { idempotency_key = "k-1" }))
      assert.is_string(p.receipt_id)
      assert.equals(p.id, check(gs.payments:register(body, { idempotency_key = "k-1" })).id)
      assert.equals(1, check(gs.receipts:list()).total_results)
    end)
  end)

  it("receipts: create, list (null entries tolerated), get, update, stamp, cancel, delete", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      local r = check(gs.receipts:create{ client = { id = c.id }, items = { item(200) } })
      assert.same({ "pending", 232 }, { r.status, r.total })
      assert.is_number(r.validUntil)
      assert.equals(464, check(gs.receipts:update(r.id, { items = { item(200, { quantity = 2 }) } })).total)
      local gone = check(gs.receipts:create{ client = { id = c.id }, items = { item(1) } })
      check(gs.receipts:delete(gone.id))
      local page = check(gs.receipts:list())
      assert.equals(1, #page.data)            -- the null entry the API sends is dropped
      local n = 0
      for _ in gs.receipts:each() do n = n + 1 end
      assert.equals(1, n)
      local stamped = check(gs.receipts:stamp(r.id))
      assert.equals("invoiced", stamped.status)
      assert.is_string(check(gs.receipts:get(r.id)).invoice_id)
      assert.equals(409, select(2, gs.receipts:stamp(r.id)).status)
      local other = check(gs.receipts:create{ items = { item(5) } })
      local _, nofiscal = gs.receipts:stamp(other.id)
      assert.equals(422, nofiscal.status)
      assert.equals(1, check(gs.invoices:errors()).total_results)
      assert.equals("cancelled", check(gs.receipts:cancel(other.id)).status)
    end)
  end)

  it("teams: list, get, create, update, integrations, series, settings, members, onboarding URL", function()
    support.with_mock(function(gs)
      local teams = check(gs.teams:list())
      assert.equals(2, teams.total_results)      -- team_mock and team_vendor (same billing account)
      local t = check(gs.teams:create{ name = "Sucursal Norte" })
      assert.equals("Sucursal Norte", check(gs.teams:get(t.id)).name)
      assert.equals("Sucursal Norte SA", check(gs.teams:update(t.id, { legal_name = "Sucursal Norte SA" })).legal_name)
      assert.is_table(check(gs.teams:integrations()))
      local s = check(gs.teams:create_series(t.id, { name = "F" }))
      assert.equals(409, select(2, gs.teams:create_series(t.id, { name = "F" })).status)
      assert.equals(50, check(gs.teams:update_series(t.id, s.id, { live = 50 })).live)
      assert.equals(1, #check(gs.teams:series(t.id)))
      local settings = check(gs.teams:settings(t.id, { split_billing = true, split_amount = 15,
        metadata_split_keys = { "vendor_id" } }))
      assert.equals(15, settings.split_amount)
      local _, bad = gs.teams:settings(t.id, { split_amount = 150 })
      assert.equals("split_amount", bad.details[1].field)
      local u = check(gs.users:create{ email = "ana@ejemplo.mx", first_name = "Ana" })
      assert.equals(1, #check(gs.teams:add_member(t.id, { id = u.id, role = "editor" })).members)
      assert.equals(0, #check(gs.teams:remove_member(t.id, { id = u.id })).members)
      local url = check(gs.teams:onboarding_url(t.id))   -- bare-string data, as documented
      assert.matches("^https://embeded%.gigstack%.pro/%?sessionId=", url)
      assert.equals(404, select(2, gs.teams:get("team_other")).status)
    end)
  end)

  it("users: list, get, create, update, reset password, login link", function()
    support.with_mock(function(gs)
      local u = check(gs.users:create{ email = "ana@ejemplo.mx", first_name = "Ana", role = "member" })
      assert.equals(409, select(2, gs.users:create{ email = "ana@ejemplo.mx" }).status)
      assert.equals(u.id, check(gs.users:get(u.id)).id)
      assert.equals("admin", check(gs.users:update(u.id, { role = "admin" })).role)
      assert.equals(1, check(gs.users:list()).total_results)
      assert.is_true(check(gs.users:reset_password{ email = "ana@ejemplo.mx" }).sent)
      assert.matches("^https://", check(gs.users:login_link{ user_id = u.id }).url)
      assert.equals(404, select(2, gs.users:login_link{ user_id = "user_x" }).status)
    end)
  end)

  it("webhooks: list, get, create, update, delete", function()
    support.with_mock(function(gs)
      local w = check(gs.webhooks:create{ url = "https://example.com/hook", events = { "payment.succeeded" } })
      assert.matches("^wh_", w.id)
      assert.equals("inactive", check(gs.webhooks:update(w.id, { status = "inactive" })).status)
      assert.equals(w.id, check(gs.webhooks:get(w.id)).id)
      assert.equals(1, check(gs.webhooks:list{ status = "inactive" }).total_results)
      check(gs.webhooks:delete(w.id))
      assert.equals(404, select(2, gs.webhooks:get(w.id)).status)
      local _, err = gs.webhooks:create{ url = "ftp://x", events = { "bad event" } }
      assert.equals(2, #err.details)
    end)
  end)

  it("catalogs and ping (all four methods)", function()
    support.with_mock(function(gs)
      assert.is_true(check(gs.catalogs:list()).total_results >= 15)
      local cat = check(gs.catalogs:get("c_RegimenFiscal"))
      assert.equals(19, #cat.entries)
      assert.equals(404, select(2, gs.catalogs:get("c_Nada")).status)
      for _, m in ipairs{ "get", "post", "put", "delete" } do
        local pong = check(gs.ping[m](gs.ping))
        assert.equals("pong", pong.message)
        assert.equals(m:upper(), pong.method)
      end
    end)
  end)

  it("records a webhook event for every state change", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create(client_body()))
      check(gs.payments:register{ client = { id = c.id }, items = { item(10) }, automation_type = "pue_invoice",
        payment_form = "03" })
      local kinds = {}
      for _, e in ipairs(check(gs:request("GET", "/_mock/events", { query = { limit = 100, sort = "asc" } })).data) do
        kinds[#kinds + 1] = e.type
      end
      assert.same({ "client.created", "payment.created", "invoice.created", "payment.succeeded" }, kinds)
    end)
  end)
end)
