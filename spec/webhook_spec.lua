-- Webhooks end to end: the emulator delivers payment.succeeded, the
-- script issues the PPD invoice's payment complement; a replayed event
-- does nothing; a request without the secret gets 401.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local webhooks = require "gigstack.runner.webhooks"
local ppd = require "gigstack.workflows.ppd_complements"
local support = require "support"

local check = gigstack.check
local OBRA = { description = "Obra", quantity = 1, unit_price = 1000, taxes = { { type = "IVA", rate = 0.16 } } }

describe("webhooks", function()
  it("a paid PPD payment is delivered, the complement issued once, replays ignored, no secret -> 401", function()
    support.with_mock(function(gs)
      local issued = {}
      local listener = gigstack.on("payment.succeeded", function(ev)
        local rep = ppd.for_event(gs, ev)
        if rep then issued[#issued + 1] = rep.uuid end
      end, { client = gs })
      check(gs.webhooks:create{ url = listener.url, events = { "payment.succeeded" } })
      local c = check(gs.clients:create{ legal_name = "CLIENTE SA", tax_id = "SAT970701NN3", tax_system = "601",
        address = { zip = "06600" } })
      local inv = check(gs.invoices:create{ client = { id = c.id }, payment_method = "PPD", payment_form = "99",
        items = { OBRA } })
      local p = check(gs.payments:request{ client = { id = c.id }, metadata = { invoice_id = inv.uuid },
        items = { OBRA } })
      check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
      for _ = 1, 50 do
        if #issued > 0 then break end
        gigstack.sleep(0.05)
      end
      assert.equals(1, #issued)
      local after = check(gs.invoices:get(inv.uuid))
      assert.same({ 0, 1 }, { after.last_balance, after.payment_complements })
      local rep = check(gs.complements:get(issued[1]))
      assert.same({ 1160, 1160, 0 }, { rep.payment.previous_balance, rep.payment.paid, rep.payment.remaining_balance })
      -- replay the same event: deduplicated by id, nothing issued
      local events = check(gs:request("GET", "/_mock/events", { query = { type = "payment.succeeded" } })).data
      local ev = events[1]
      local body = require("gigstack.async.json").encode({ id = ev.id, type = ev.type, data = ev.data })
      local again = assert(http.request{ method = "POST", url = listener.url, body = body })
      assert.equals(200, again.status)           -- answered after the handlers ran
      assert.equals(1, #issued)
      assert.equals(1, listener.duplicates)
      assert.equals(1, check(gs.complements:list{ invoice_id = inv.uuid }).total_results)
      -- no secret
      local bare = assert(http.request{ method = "POST", url = listener.server.url .. "/hooks/wrong", body = body })
      assert.equals(401, bare.status)
      assert.equals(1, listener.rejected)
      webhooks.stop()
    end)
  end)

  it("retries delivery with backoff until the endpoint answers 2xx", function()
    support.with_mock(function(gs)
      local calls = 0
      local hook = assert(http.listen{ port = 0, handler = function()
        calls = calls + 1
        return calls < 3 and 503 or 200, {}, ""
      end })
      check(gs.webhooks:create{ url = hook.url .. "/h" })
      check(gs.clients:create{ legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601" })
      for _ = 1, 60 do
        if calls >= 3 then break end
        gigstack.sleep(0.05)
      end
      hook.close()
      assert.equals(3, calls)
      local ev = check(gs:request("GET", "/_mock/events", { query = { type = "client.created" } })).data[1]
      assert.same({ 503, 503, 200 }, { ev.deliveries[1].status, ev.deliveries[2].status, ev.deliveries[3].status })
    end, { delivery_backoff = 0.05 })
  end)
end)

describe("webhooks across processes", function()
  it("a gigstack-run --listen script gets the emulator's event and issues the complement", function()
    local RUN = "./" .. support.build_dir() .. "/gigstack-run"
    local emu = io.popen("sh -c 'echo $$; exec " .. RUN .. " --serve-mock 127.0.0.1:0'")
    local emu_pid, url = emu:read("l"), emu:read("l")
    local out = os.tmpname()
    local script = io.popen("sh -c 'echo $$; exec env GIGSTACK_BASE_URL=" .. url .. " GIGSTACK_API_KEY=sk_test_mock "
      .. RUN .. " scripts/ppd_complements.lua --listen > " .. out .. " 2>&1'")
    local script_pid = script:read("l")
    local result = {}
    local run_ok, run_err = pcall(gigstack.run, function()
      local gs = gigstack.new{ api_key = "sk_test_mock", base_url = url }
      for _ = 1, 50 do                 -- wait until the script registered its webhook
        local hooks = gs.webhooks:list()
        if hooks and hooks.total_results > 0 then break end
        gigstack.sleep(0.1)
      end
      local c = check(gs.clients:create{ legal_name = "CLIENTE SA", tax_id = "SAT970701NN3", tax_system = "601",
        address = { zip = "06600" } })   -- DomicilioFiscalReceptor: an invoice needs it
      local inv = check(gs.invoices:create{ client = { id = c.id }, payment_method = "PPD", payment_form = "99",
        items = { OBRA } })
      local p = check(gs.payments:request{ client = { id = c.id }, metadata = { invoice_id = inv.uuid },
        items = { OBRA } })
      check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
      for _ = 1, 150 do
        result.reps = check(gs.complements:list{ invoice_id = inv.uuid }).total_results
        if result.reps > 0 then break end
        gigstack.sleep(0.1)
      end
      result.balance = check(gs.invoices:get(inv.uuid)).last_balance
    end, { timeout = support.WATCHDOG })
    os.execute("kill -TERM " .. script_pid .. " " .. emu_pid)
    script:read("a"); script:close()
    emu:read("a"); emu:close()
    local f = io.open(out)
    local printed = f and f:read("a") or ""
    if f then f:close() end
    os.remove(out)
    assert.is_true(run_ok, tostring(run_err) .. "\n" .. printed)
    assert.same({ 1, 0 }, { result.reps, result.balance }, printed)
    assert.matches("listening at http://127%.0%.0%.1:%d+/hooks/", printed)
    assert.matches("complement [%x%-]+ for payment payment_", printed)
  end)
end)
