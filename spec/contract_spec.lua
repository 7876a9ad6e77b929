-- Every example request body of seeds 000 and 001, sent as documented
-- (SDK validation off), checked against the documented response.
local gigstack = require "gigstack"
local support = require "support"
local examples = dofile("spec/fixtures/doc_examples.lua")

local check = gigstack.check
local RAW = { validate = false }

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function post(gs, body)
  local env, err = gs:request("POST", "/payments", { body = body })
  assert.is_nil(err)
  return env
end

describe("documentation contract", function()
  it("seed 000: POST /v2/payments examples answer the documented fields and values", function()
    support.with_mock(function(gs)
      local basic = post(gs, examples.basic)
      assert.same({ "data", "message", "next" }, keys(basic))
      local p = basic.data
      assert.equals(150000, p.amount)                        -- 100 × item total
      assert.same({ "MXN", "requires_payment_method", "client_7kL2mX9pNqR4eWs" }, { p.currency, p.status, p.clientId })
      assert.matches("^payment%w+$", p.id)
      assert.equals(p.id, p.fid)
      for _, field in ipairs{ "team", "billingAccount", "internalStatus", "client", "items", "exchange",
          "processor", "custom_method_types", "automations", "invoices", "metadata", "from", "timestamp",
          "created", "livemode", "shortURL", "shortUrl" } do
        assert.is_not_nil(p[field], "missing data." .. field)
      end
      assert.equals("https://gigstack.xyz/" .. p.id, p.shortURL)

      local adv = post(gs, examples.advanced).data
      assert.equals(150000, adv.amount)
      assert.same({ "ROSM850315QT8", "MARIA RODRIGUEZ SANTOS" }, { adv.client.tax_id, adv.client.legal_name })
      assert.equals("invoice", adv.automations[1].type)
      local _, dup = gs:request("POST", "/payments", { body = examples.advanced })
      assert.equals(409, dup.status)                         -- duplicate metadata.internalId

      local paid = post(gs, examples.paid).data
      assert.same({ 2500000, "succeeded", "01" }, { paid.amount, paid.status, paid.payment_form })
      assert.equals(1, #paid.invoices)
      assert.equals(25000, check(gs.invoices:get(paid.invoices[1])).total)

      local _, bad = gs:request("POST", "/payments", { body = { clientId = "client_7kL2mX9pNqR4eWs",
        items = { { name = "x", total = 10 } }, paid = true } })
      assert.same({ 400, "VALIDATION_ERROR" }, { bad.status, bad.code })
      assert.is_string(bad.details.paymentMethod)            -- older error shape: field map
      local _, combo = gs:request("POST", "/payments", { body = { clientId = "client_7kL2mX9pNqR4eWs",
        items = { { name = "x", total = 10 } }, automateIncomeInvoiceAndComplement = true, paymentMethod = "03" } })
      assert.is_string(combo.details.automateIncomeInvoiceAndComplement)
    end, { examples = true })
  end)

  it("seed 000: split billing answers transfer_data with split = 100 - split_amount, stored apart", function()
    support.with_mock(function(gs)
      check(gs.teams:settings("team_mock", { split_billing = true, split_amount = 10,
        metadata_split_keys = { "vendor_id", "vendor_code" }, split_billing_type = "client",
        split_billing_type_connect = "client" }))
      local p = post(gs, examples.split).data
      assert.equals(1000000, p.amount)
      assert.same({ destination = "team_connectPartner123", split = 90,
        splitType = { master = "client", connect = "client" } }, p.transfer_data)
      local v = post(gs, examples.split_vendor).data
      assert.equals("team_vendor456", v.transfer_data.destination)
      local by_code = post(gs, { clientId = "client_customer123", items = { { name = "x", total = 100 } },
        metadata = { vendor_code = "ABC123" } }).data
      assert.equals("team_vendor456", by_code.transfer_data.destination)  -- matched by team metadata
      assert.equals(0, check(gs.payments:list()).total_results)         -- connectPaymentsHub, apart
      assert.equals(p.id, check(gs.payments:get(p.id)).id)
      local _, other = gs:request("POST", "/payments", { body = { clientId = "client_customer123",
        items = { { name = "x", total = 1 } }, metadata = { vendor_id = "team_other" } } })
      assert.equals(403, other.status)
    end, { examples = true })
  end)

  it("seed 000: team in the body creates the payment for a team of the same billing account", function()
    support.with_mock(function(gs)
      local p = post(gs, examples.master).data
      assert.equals("team_9ZwE3pF8qKmJ7xL", p.team)
      assert.equals(500000, p.amount)
      local s = post(gs, examples.subsidiary).data
      assert.equals("team_subsidiary123", s.team)          -- internalId is per team: no 409
      assert.equals(1, check(gs.payments:list{ team = "team_subsidiary123" }).total_results)
    end, { examples = true })
  end)

  it("seed 001: the register example creates client and service and answers the newer payment", function()
    support.with_mock(function(gs)
      local _, refused = gs.payments:register(examples.register)
      assert.equals("validation", refused.kind)           -- the SDK flags P01 and the RFC's check character
      local p = check(gs.payments:register(examples.register, RAW))
      assert.same({ 1000, 160, 1160, "MXN", "succeeded" }, { p.subtotal, p.taxes, p.total, p.currency, p.status })
      assert.equals("PEGJ800101ABC", p.client.tax_id)
      assert.matches("^payment_", p.id)
      assert.matches("^https://pay%.gigstack%.io/p/", p.short_url)
      for _, field in ipairs{ "client", "items", "metadata", "invoice_config", "idempotency_key", "refunds",
          "total_refunded", "withholding_taxes", "created_at", "succeeded_at", "payment_processor", "livemode",
          "allowed_payment_methods", "exchange_rate" } do
        assert.is_not_nil(p[field], "missing data." .. field)
      end
      local svc = check(gs.services:list()).data[1]
      assert.same({ "CONS-001", 1000 }, { svc.sku, svc.unit_price })
      local again = check(gs.payments:register(examples.register, RAW))
      assert.equals(p.client.id, again.client.id)          -- found by tax_id this time
      assert.equals(1, check(gs.services:list()).total_results)
      local env = gs:request("GET", "/payments", { query = { limit = 1 } })
      assert.same({ "data", "has_more", "message", "next", "total_results" }, keys(env))
    end, { examples = true })
  end)
end)

describe("gigstack Connect", function()
  it("a master team acts for a team of its billing account and is refused for another", function()
    support.with_mock(function(gs, server)
      local c = check(gs.clients:create({ legal_name = "CLIENTE VENDOR", tax_id = "CAMA911215CJ0",
        tax_system = "612" }, { team = "team_vendor" }))
      local p = check(gs.payments:register({ client = { id = c.id }, items = { { description = "x",
        unit_price = 100 } } }, { team = "team_vendor" }))
      assert.equals("team_vendor", p.team)
      assert.equals(1, check(gs.payments:list{ team = "team_vendor" }).total_results)
      assert.equals(0, check(gs.payments:list()).total_results)
      local scoped = gigstack.new{ api_key = server.api_key, base_url = server.base_url, team = "team_vendor" }
      assert.equals(1, check(scoped.payments:list()).total_results)
      local _, other = gs.payments:list{ team = "team_other" }
      assert.equals(403, other.status)
      local _, body_team = gs:request("POST", "/payments", { body = { team = "team_other",
        clientId = "x", items = { { name = "x", total = 1 } } } })
      assert.equals(403, body_team.status)
      local vendor = gigstack.new{ api_key = "sk_test_vendor", base_url = server.base_url }
      local _, not_master = vendor.payments:list{ team = "team_mock" }
      assert.equals(403, not_master.status)
      assert.matches("not a master team", not_master.message)
    end)
  end)
end)
