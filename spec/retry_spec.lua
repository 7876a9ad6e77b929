-- Retries, deadlines and the "never sent" / "outcome unknown" line,
-- against the fault-injecting emulator.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local core = require "gigstack.core"
local support = require "support"

local function fault(kind) return { ["X-Mock-Fault"] = kind } end

describe("retries", function()
  it("respects Retry-After: the measured sleep is at least the header's value", function()
    support.with_mock(function(gs)
      local t0 = core.now()
      local page, err, meta = gs:request("GET", "/clients", { headers = fault("429*1") })
      local took = (core.now() - t0) / 1000
      assert.is_nil(err)
      assert.is_table(page.data)
      assert.equals(2, #meta.attempts)
      assert.equals(429, meta.attempts[1].status)
      assert.is_true(meta.attempts[2].slept >= 1.0, "slept " .. meta.attempts[2].slept)
      assert.is_true(meta.attempts[2].slept <= 1.05)
      assert.is_true(took >= 1.0 and took < 2.5, "took " .. took)
    end, { retry_after = 1 })
  end)

  it("does not wait for a Retry-After beyond the cap and reports it", function()
    support.with_mock(function(_, server)
      local gs = gigstack.new{ api_key = server.api_key, base_url = server.base_url, max_retry_after = 2 }
      local t0 = core.now()
      local _, err = gs:request("GET", "/clients", { headers = fault("429") })
      assert.is_true(core.now() - t0 < 500)
      assert.equals("rate_limit", err.kind)
      assert.equals(5, err.retry_after)
      assert.equals(1, #err.attempts)
    end, { retry_after = 5 })
  end)

  it("keeps one overall deadline across attempts and sleeps", function()
    support.with_mock(function(_, server)
      local gs = gigstack.new{ api_key = server.api_key, base_url = server.base_url,
        retries = 20, backoff_base = 0.2, backoff_cap = 0.4, deadline = 1.5 }
      local t0 = core.now()
      local _, err = gs:request("GET", "/clients", { headers = fault("503") })
      local took = (core.now() - t0) / 1000
      assert.equals(503, err.status)
      assert.is_true(#err.attempts >= 3, "attempts " .. #err.attempts)
      assert.is_true(#err.attempts < 21)
      assert.is_true(took <= 1.5 + 0.1, "took " .. took)
      assert.matches("deadline", err.message)
      local _, stall = gs:request("GET", "/clients", { headers = fault("stall"), timeout = 5, deadline = 0.8 })
      assert.equals("timeout", stall.kind)
    end, { stall = 3 })
  end)

  it("never retries a POST without idempotency key after reset-after-handler: outcome unknown", function()
    support.with_mock(function(gs, server)
      local body = { legal_name = "CLIENTE SA", tax_id = "SAT970701NN3", tax_system = "601" }
      local c, err = gs:request("POST", "/clients", { body = body, headers = fault("reset_after") })
      assert.is_nil(c)
      assert.equals("outcome_unknown", err.kind)
      assert.equals("unknown", err.sent)
      assert.equals(1, #err.attempts)
      assert.matches("may have reached gigstack", err.message)
      -- the emulator did act: the client exists once
      assert.equals(1, server.emulator:stats().payments + #gigstack.check(gs.clients:list()).data)
    end)
  end)

  it("retries a payment with an idempotency key after reset-after-handler and creates it once", function()
    support.with_mock(function(gs, server)
      local p, err, meta = gs:request("POST", "/payments/register", { headers = fault("reset_after*2"),
        body = { client = { legal_name = "CLIENTE SA", tax_id = "SAT970701NN3", tax_system = "601",
          address = { zip = "06600" }, search = { on_key = "tax_id", on_value = "SAT970701NN3", auto_create = true } },
          items = { { description = "x", unit_price = 100 } }, automation_type = "pue_invoice",
          payment_form = "03", idempotency_key = "sale-42" } })
      assert.is_nil(err)
      assert.equals(3, #meta.attempts)
      assert.equals("sale-42", p.data.idempotency_key)
      local st = server.emulator:stats()
      assert.same({ 1, 1, 0 }, { st.payments, st.invoices, st.duplicate_keys })
    end)
  end)

  it("retries reads after reset-before, truncated bodies and HTML error pages", function()
    support.with_mock(function(gs)
      for _, kind in ipairs{ "reset_before*1", "truncate*1", "html*1", "empty*1", "500*1" } do
        local page, err, meta = gs:request("GET", "/clients", { headers = fault(kind) })
        assert.is_nil(err, kind)
        assert.is_table(page.data)
        assert.equals(2, #meta.attempts, kind)
      end
    end)
  end)

  it("retries a POST that was never sent (connection refused) and reports every attempt", function()
    gigstack.run(function()
      local probe = assert(http.listen{ port = 0, handler = function() return 200 end })
      local url = probe.url
      probe.close()
      local gs = gigstack.new{ api_key = "sk_test_x", base_url = url .. "/v2", retries = 3,
        backoff_base = 0.01, backoff_cap = 0.02 }
      local _, err = gs:request("POST", "/clients", { body = { name = "x" } })
      assert.equals("connect", err.kind)
      assert.equals(4, #err.attempts)
      for _, a in ipairs(err.attempts) do assert.equals("no", a.sent) end
    end, { timeout = support.WATCHDOG })
  end)

  it("turns bad bodies into error values: HTML, truncated JSON, invalid UTF-8, oversized", function()
    gigstack.run(function()
      local bodies = { html = "<html>oops</html>", trunc = '{"data":[{"id":', utf = '{"data":"\255\254"}',
        big = '{"data":"' .. string.rep("x", 5000) .. '"}' }
      local server = assert(http.listen{ port = 0, handler = function(req)
        return 200, { ["Content-Type"] = "application/json" }, bodies[req.path:match("/v2/(%w+)")]
      end })
      local gs = gigstack.new{ api_key = "sk_test_x", base_url = server.url .. "/v2", max_response = 4096 }
      for _, name in ipairs{ "html", "trunc", "utf" } do
        local v, err = gs:request("GET", "/" .. name)
        assert.is_nil(v)
        assert.equals("decode", err.kind, name)
      end
      local _, big = gs:request("GET", "/big")
      assert.equals("too_large", big.kind)
      server.close()
    end, { timeout = support.WATCHDOG })
  end)
end)
