-- Split billing: 1,000 random orders, payouts + commissions = gross to
-- the cent, and the settlement matches the emulator's transfer_data.
local gigstack = require "gigstack"
local money = require "gigstack.fiscal.money"
local split = require "gigstack.workflows.split_billing"
local support = require "support"

describe("split billing workflow", function()
  it("settles 1,000 random orders exactly and agrees with the emulator's transfer_data", function()
    require("gigstack.runner.report").reset()
    support.with_mock(function(gs)
      gigstack.check(gs.teams:settings("team_mock", { split_billing = true, split_amount = 12.5,
        metadata_split_keys = { "vendor_id" } }))
      local vendors = { "team_vendor" }
      for i = 1, 3 do vendors[#vendors + 1] = gigstack.check(gs.teams:create{ name = "Vendor " .. i }).id end
      local buyer = gigstack.check(gs.clients:create{ legal_name = "COMPRADOR SA", tax_id = "SAT970701NN3",
        tax_system = "601" })
      math.randomseed(7)
      local orders = {}
      for i = 1, 1000 do
        orders[i] = { id = "O" .. i, vendor = vendors[math.random(#vendors)], client = buyer.id,
          total = string.format("%d.%02d", math.random(0, 20000), math.random(0, 99)) }
      end
      local s = split.run(gs, orders, { mode = "split", master = "team_mock", concurrency = 16 })
      assert.equals(0, #s.failures)
      local t = s.totals
      assert.equals(1000, t.orders)
      assert.equals(t.gross, t.net + t.commission)
      local sum = { gross = 0, net = 0, commission = 0 }
      for _, v in pairs(s.vendors) do
        assert.equals(v.gross, v.net + v.commission)
        sum.gross, sum.net, sum.commission = sum.gross + v.gross, sum.net + v.net, sum.commission + v.commission
      end
      assert.same({ t.gross, t.net, t.commission }, { sum.gross, sum.net, sum.commission })
      -- recompute from what the emulator stored
      local report = require "gigstack.runner.report"
      local from_emulator = { gross = 0, net = 0 }
      for _, e in ipairs(report.items) do
        if e.payment then
          local p = gigstack.check(gs.payments:get(e.payment))
          from_emulator.gross = from_emulator.gross + p.amount
          local td = p.transfer_data
          local parts = money.allocate(money.json(p.amount).text, { td.split, 100 - td.split })
          from_emulator.net = from_emulator.net + parts[1]:units(2)
          assert.equals(87.5, p.transfer_data.split)
        end
      end
      assert.same({ t.gross, t.net }, { from_emulator.gross, from_emulator.net })
      -- and from the orders alone, in integer cents, without the code under
      -- test: the vendor gets 87.5 % = 7/8 of each order; splitting the
      -- cents by largest remainder gives the odd cent to the larger
      -- fraction (the vendor's on a tie), which is cents * 7/8 rounded
      -- half-up = (14 * cents + 8) // 16; the commission is the rest.
      local gross, net = 0, 0
      for _, o in ipairs(orders) do
        local units, cents = o.total:match("^(%d+)%.(%d%d)$")
        local c = tonumber(units) * 100 + tonumber(cents)
        gross = gross + c
        net = net + (14 * c + 8) // 16
      end
      assert.same({ gross, net, gross - net }, { t.gross, t.net, t.commission })
    end, { concurrency = 16 })
  end)
end)
