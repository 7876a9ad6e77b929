-- Regressions found in review: stray wake-ups, lost concurrency slots,
-- cursors over deleted items, decimal overflow, action options, and
-- libcurl's silent resend of a POST on a reused connection.
local gigstack = require "gigstack"
local core = require "gigstack.core"
local decimal = require "gigstack.fiscal.decimal"
local money = require "gigstack.fiscal.money"
local support = require "support"

local check = gigstack.check
local SLOW = { headers = { ["X-Mock-Latency"] = "2000" } }

describe("regressions", function()
  it("a task that timed out a group sleeps and calls normally afterwards", function()
    support.with_mock(function(gs)
      local v = gigstack.timeout(0.1, function() return gs:request("GET", "/clients", SLOW) end)
      assert.is_nil(v)
      local t0 = core.now()
      gigstack.sleep(0.2)
      assert.is_true(core.now() - t0 >= 190, "sleep returned early")
      assert.is_table(check(gs.clients:list()).data)
    end)
  end)

  it("a cancelled call gives its concurrency slot back, and a cancelled waiter blocks nobody", function()
    support.with_mock(function(_, server)
      local gs = gigstack.new{ api_key = server.api_key, base_url = server.base_url, concurrency = 1 }
      gigstack.timeout(0.1, function() return gs:request("GET", "/clients", SLOW) end)
      assert.equals(0, gs.inflight)
      -- B waits for the slot held by A; B is cancelled; C must still run
      local a = gigstack.spawn(function()
        return gs:request("GET", "/clients", { headers = { ["X-Mock-Latency"] = "300" } })
      end)
      gigstack.sleep(0.02)
      gigstack.timeout(0.05, function() return gs:request("GET", "/clients") end)
      local c = gigstack.timeout(3, function() return check(gs.clients:list()) end)
      gigstack.join(a)
      assert.is_table(c.data)
      assert.equals(0, gs.inflight)
    end)
  end)

  it("pages on while the loop deletes items or changes what the filter matches", function()
    support.with_mock(function(gs)
      for i = 1, 12 do
        check(gs.clients:create{ legal_name = "C" .. i, tax_id = "SAT970701NN3", tax_system = "601" })
      end
      local seen = 0
      for c in gs.clients:each{ limit = 5 } do
        seen = seen + 1
        check(gs.clients:delete(c.id))
      end
      assert.equals(12, seen)
      local buyer = check(gs.clients:create{ legal_name = "B", tax_id = "SAT970701NN3", tax_system = "601" })
      for _ = 1, 7 do
        check(gs.payments:request{ client = { id = buyer.id }, items = { { description = "x", unit_price = 1 } } })
      end
      local paid = 0
      for p in gs.payments:each{ limit = 2, status = "requires_payment_method" } do
        check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
        paid = paid + 1
      end
      assert.equals(7, paid)
    end)
  end)

  it("decimal arithmetic raises out of range instead of wrapping around", function()
    assert.has_error(function() return decimal.new("12345678901234") + decimal.new("0.0000001") end)
    assert.has_error(function() return decimal.new("99999999999999999"):round(2) end)
    assert.has_error(function() return decimal.new(1):round(19) end)
    assert.is_nil((money.cents(1e17)))
    assert.equals("0", decimal.new(".123456789012345678"):round(0):format())
    assert.equals("1763668414462.000000", decimal.new("12345678901234"):div(7, 6):format())
    assert.same({ 4, 3, -4 }, { money.div_round(-7, -2), money.div_round(-5, -2), money.div_round(7, -2) })
  end)

  it("passes options (not a body) to action methods given only options", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create({ legal_name = "V", tax_id = "SAT970701NN3", tax_system = "601" },
        { team = "team_vendor" }))
      local p = check(gs.payments:request({ client = { id = c.id }, items = { { description = "x", unit_price = 5 } } },
        { team = "team_vendor" }))
      assert.equals("cancelled", check(gs.payments:cancel(p.id, { team = "team_vendor" })).status)
    end)
  end)

  it("never lets libcurl resend a write: one that may not be repeated takes no reused connection", function()
    -- Before the engine forced a fresh connection, this POST went on the
    -- GET's kept-alive connection; the server reset it after acting and
    -- libcurl silently sent it again on a new one: the server saw it
    -- twice while the caller was told "1 attempt".
    local http = require "gigstack.async.http"
    local peers, posts = {}, 0
    local ok, err = pcall(gigstack.run, function()
      local server = assert(http.listen{ port = 0, handler = function(req)
        peers[#peers + 1] = req.peer
        if req.method == "POST" then
          posts = posts + 1
          return req:abort()                   -- acted, then the connection resets
        end
        return 200, {}, "ok"
      end })
      local first = assert(http.request{ url = server.url .. "/a" })
      local _, perr = http.request{ url = server.url .. "/b", method = "POST", body = "{}", retries = 3 }
      local third = assert(http.request{ url = server.url .. "/c" })
      server.close()
      assert.equals(1, first.new_connections)
      assert.equals("unknown", perr.sent)
      assert.equals(1, #perr.attempts)
      assert.equals(0, third.new_connections)  -- reads still reuse the kept-alive connection
    end, { timeout = support.WATCHDOG })
    assert.is_true(ok, tostring(err))
    assert.equals(1, posts)                    -- sent once
    assert.equals(3, #peers)
    assert.matches("^127%.0%.0%.1:%d+$", peers[1])
    assert.are_not.equal(peers[1], peers[2])   -- the POST came on a connection of its own
    assert.equals(peers[1], peers[3])          -- the third request on the first's connection
  end)

  it("sends a POST without idempotency key on a fresh connection; a reset is outcome_unknown, sent once", function()
    support.with_mock(function(gs, server)
      check(gs.clients:list())                 -- leaves a kept-alive connection the POST must not use
      local _, err = gs:request("POST", "/clients", { headers = { ["X-Mock-Fault"] = "reset_after" },
        body = { legal_name = "Una vez", tax_id = "SAT970701NN3", tax_system = "601" } })
      assert.equals("outcome_unknown", err.kind)
      assert.equals(1, #err.attempts)
      assert.equals(1, check(gs.clients:search("Una vez")).total_results)
      assert.is_table(server)
    end)
  end)
end)
