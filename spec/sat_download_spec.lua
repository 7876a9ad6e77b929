-- The SAT download service ("Descarga Masiva") through the SDK against
-- the emulator: activation state machine, schedule, history, mirrored
-- CFDIs (received and issued) with their filters and cursor, retry-xml
-- (success, 422 upstream rejection, 502 timeout) and the base64 PDF.
local gigstack = require "gigstack"
local support = require "support"
local json = require "gigstack.async.json"
local mock = require "gigstack.mock"

local check = gigstack.check

local function b64decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bits = s:gsub("[^%w+/=]", ""):gsub(".", function(ch)
    if ch == "=" then return "" end
    local n = alphabet:find(ch, 1, true) - 1
    local out = {}
    for i = 5, 0, -1 do out[#out + 1] = (n >> i) & 1 end
    return table.concat(out)
  end)
  return (bits:gsub("%d%d%d?%d?%d?%d?%d?%d?", function(byte)
    if #byte ~= 8 then return "" end
    return string.char(tonumber(byte, 2))
  end))
end

describe("SAT download (Descarga Masiva)", function()
  it("activation: needs_activation -> active -> deactivated; add-on and upgrade plans", function()
    support.with_mock(function(gs)
      local st = check(gs.sat_download:status())
      assert.same({ "needs_activation", true, false }, { st.status, st.planIncludesFeature, st.isActivated })
      assert.equals("0.20", string.format("%.2f", st.pricing.perDownload))
      assert.equals(json.null, st.pricing.addonMonthly)
      -- the list needs the service active
      local _, inactive = gs.sat_invoices:list()
      assert.same({ 403, "operation_not_allowed" }, { inactive.status, inactive.code })
      local act = check(gs.sat_download:activate())
      assert.equals("included", act.type)
      assert.equals("active", check(gs.sat_download:status()).status)
      assert.equals(409, select(2, gs.sat_download:activate()).status)
      check(gs.sat_download:deactivate())
      assert.equals("needs_activation", check(gs.sat_download:status()).status)
      assert.equals(409, select(2, gs.sat_download:deactivate()).status)
      -- team_vendor's plan sells it as an add-on; team_other's plan needs an upgrade
      local vendor = check(gs.sat_download:status{ team = "team_vendor" })
      assert.same({ "needs_addon", false }, { vendor.status, vendor.planIncludesFeature })
      assert.equals("addon", check(gs.sat_download:activate{ team = "team_vendor" }).type)
      local other = gigstack.new{ api_key = "sk_test_other", base_url = gs.base_url }
      assert.equals("needs_upgrade", check(other.sat_download:status()).status)
      local _, up = other.sat_download:activate()
      assert.same({ 402, "business_rule_violation" }, { up.status, up.code })
    end)
  end)

  it("a failed first request leaves the mirror whole (the seeding rolls back with it)", function()
    support.with_mock(function(gs)
      local _, inactive = gs.sat_invoices:list()   -- the team's first SAT request: 403
      assert.equals(403, inactive.status)
      check(gs.sat_download:activate())
      -- lua/gigstack/mock/sat_download.lua MIRROR has 15 CFDIs
      assert.equals(15, check(gs.sat_invoices:list{ limit = 100 }).total_results)
    end)
  end)

  it("schedule: read, set (validated), history", function()
    support.with_mock(function(gs)
      local s = check(gs.sat_download:schedule())
      assert.same({ true, true, true }, { s.fiel_uploaded, s.registered, s.sat_completed })
      assert.same({ false, { "issued", "received" } }, { s.schedule.enabled, s.schedule.downloadTypes })
      local set = check(gs.sat_download:set_schedule{ enabled = true, time = "02:30", download_types = { "received" },
        days_back = 30 })
      assert.same({ true, "02:30", { "received" }, 30 }, { set.schedule.enabled, set.schedule.time,
        set.schedule.downloadTypes, set.schedule.daysBack })
      local again = check(gs.sat_download:schedule())
      assert.same({ "02:30", 30 }, { again.schedule.time, again.schedule.daysBack })
      local _, bad = gs.sat_download:set_schedule{ enabled = "yes", time = "25:00", download_types = { "all" },
        days_back = 91 }
      assert.equals(400, bad.status)
      local fields = {}
      for _, d in ipairs(bad.details) do fields[#fields + 1] = d.field end
      table.sort(fields)
      assert.same({ "days_back", "download_types[1]", "enabled", "time" }, fields)
      assert.equals("02:30", check(gs.sat_download:schedule()).schedule.time)   -- nothing changed
      local h = check(gs.sat_download:history())
      assert.is_true(#h.history >= 2)
      for _, run in ipairs(h.history) do
        assert.is_string(run.id)
        assert.truthy(({ received = 1, issued = 1 })[run.rfcType])
        assert.is_number(run.invoiceCount)
      end
    end)
  end)

  it("lists mirrored CFDIs received and issued, with filters and a starting_after cursor", function()
    support.with_mock(function(gs)
      check(gs.sat_download:activate())
      local all = {}
      for inv in gs.invoices.sat:each{ limit = 3 } do all[#all + 1] = inv end
      assert.is_true(#all >= 12)
      local received, issued, missing = 0, 0, 0
      local team = check(gs.teams:get("team_mock"))
      for i, inv in ipairs(all) do
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", inv.uuid)
        if inv.direction == "received" then
          received = received + 1
          assert.equals(team.tax_id, inv.receiver.rfc)
        else
          issued = issued + 1
          assert.equals(team.tax_id, inv.issuer.rfc)
        end
        if inv.hasXml == false then
          missing = missing + 1
          assert.is_string(inv.xmlError)
        end
        if i > 1 then assert.is_true(all[i - 1].issue_date >= inv.issue_date, "newest first") end
      end
      assert.is_true(received > 0 and issued > 0 and missing >= 3)
      -- filters: direction, a from/to window (a date-only `to` takes its whole day), type, RFCs, status
      local oct = check(gs.sat_invoices:list{ direction = "received", from = "2026-10-01", to = "2026-10-31",
        limit = 100 })
      local want = 0
      for _, inv in ipairs(all) do
        if inv.direction == "received" and inv.issue_date:sub(1, 7) == "2026-10" then want = want + 1 end
      end
      assert.is_true(want > 0)
      assert.equals(want, #oct.data)
      for _, inv in ipairs(oct.data) do
        assert.equals("received", inv.direction)
        assert.equals("2026-10", inv.issue_date:sub(1, 7))
      end
      local first = oct.data[1]
      local by_issuer = check(gs.sat_invoices:list{ issuer_rfc = first.issuer.rfc, limit = 100 })
      for _, inv in ipairs(by_issuer.data) do assert.equals(first.issuer.rfc, inv.issuer.rfc) end
      local cancelled = check(gs.sat_invoices:list{ status = "Cancelado", limit = 100 })
      assert.is_true(#cancelled.data >= 1)
      for _, inv in ipairs(cancelled.data) do assert.equals("Cancelado", inv.status) end
      local egress = check(gs.sat_invoices:list{ invoice_type = "E,P", limit = 100 })
      for _, inv in ipairs(egress.data) do assert.truthy(({ E = 1, P = 1 })[inv.invoice_type]) end
      local _, bad = gs.sat_invoices:list{ direction = "sideways" }
      assert.same({ 400, "direction" }, { bad.status, bad.details[1].field })
      local _, bad_to = gs.sat_invoices:list{ to = "octubre" }
      assert.same({ "validation", "to" }, { bad_to.kind, bad_to.details[1].field })
      -- one CFDI in full
      local one = check(gs.sat_invoices:get(first.uuid))
      assert.same({ first.uuid, "4.0" }, { one.uuid, one.version })
      assert.is_string(one.pac_rfc)
      assert.equals(404, select(2, gs.sat_invoices:get("00000000-0000-4000-8000-000000000000")).status)
    end)
  end)

  it("retry-xml: charged success, 422 upstream rejection, 502 timeout; pdf is top-level base64", function()
    support.with_mock(function(gs)
      check(gs.sat_download:activate())
      local by_error = {}
      local with_xml
      for inv in gs.sat_invoices:each{ limit = 100 } do
        if inv.hasXml == false then by_error[inv.xmlError] = inv elseif not with_xml then with_xml = inv end
      end
      local transient = assert(by_error["download_pending"], "a CFDI whose XML download is only pending")
      local rejected = assert(by_error["upstream_rejected"], "a CFDI the provider rejects")
      local slow = assert(by_error["upstream_timeout"], "a CFDI whose provider times out")
      local _, no_pdf = gs.sat_invoices:pdf(transient.uuid)
      assert.equals(409, no_pdf.status)
      local ok = check(gs.sat_invoices:retry_xml(transient.uuid))
      assert.is_true(ok.credit_charged)
      local after = check(gs.sat_invoices:get(transient.uuid))
      assert.same({ true, json.null }, { after.has_xml, after.xmlError })
      local again = check(gs.sat_invoices:retry_xml(transient.uuid))   -- already there: nothing charged
      assert.is_false(again.credit_charged)
      for _ = 1, 2 do   -- deterministic: the same answer every time
        local _, e422 = gs.sat_invoices:retry_xml(rejected.uuid)
        assert.same({ 422, "external_service_error" }, { e422.status, e422.code })
        assert.matches("Prodigia", e422.message)
        local _, e502 = gs.sat_invoices:retry_xml(slow.uuid)
        assert.same({ 502, "server" }, { e502.status, e502.kind })
      end
      local pdf = check(gs.sat_invoices:pdf(with_xml.uuid))
      assert.is_string(pdf.pdf)
      local bytes = b64decode(pdf.pdf)
      assert.matches("^%%PDF%-1%.4", bytes)
      assert.truthy(bytes:find(with_xml.uuid, 1, true))
      assert.equals(404, select(2, gs.sat_invoices:retry_xml("00000000-0000-4000-8000-000000000000")).status)
    end)
  end)

  it("routes /invoices/sat apart from DELETE /invoices/{uuid}", function()
    support.with_mock(function(gs)
      check(gs.sat_download:activate())
      local env = check(gs:request("GET", "/invoices/sat"))
      assert.is_table(env.data)
      local _, e405 = gs:request("PUT", "/invoices/sat")
      assert.equals(405, e405.status)
      local _, e404 = gs:request("DELETE", "/invoices/not-an-invoice", { body = { motive = "02" } })
      assert.equals(404, e404.status)
    end)
    -- a literal path wins over a parameter whatever the registration order
    local e = mock.new()
    local reversed = {}
    for i = #e.routes, 1, -1 do reversed[#reversed + 1] = e.routes[i] end
    e.routes = reversed
    local status = e:handle{ method = "GET", path = "/v2/clients/search", query = { q = "x" },
      headers = { authorization = "Bearer sk_test_mock" }, body = "" }
    assert.equals(200, status)
  end)
end)
