-- Month-end against the emulator: receipts, exports, complements owed.
local gigstack = require "gigstack"
local month_end = require "gigstack.workflows.month_end"
local support = require "support"

local check = gigstack.check
local ITEM = { description = "Servicio", quantity = 1, unit_price = 100, taxes = { { type = "IVA", rate = 0.16 } } }

describe("month-end workflow", function()
  it("stamps receipts it can, reports the rest, exports CSVs and lists complements owed", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    support.with_mock(function(gs, server)
      local now = 1795000000          -- 2026-11-18 UTC
      server.emulator.store.clock = function() return now end
      local c = check(gs.clients:create{ legal_name = "CON RFC", tax_id = "SAT970701NN3", tax_system = "601",
        address = { zip = "06600" } })
      check(gs.receipts:create{ client = { id = c.id }, items = { ITEM } })
      check(gs.receipts:create{ items = { ITEM } })                  -- no client: stays for the global invoice
      local ppd = check(gs.invoices:create{ client = { id = c.id }, items = { ITEM }, payment_method = "PPD",
        payment_form = "99" })
      local p = check(gs.payments:request{ client = { id = c.id }, items = { ITEM },
        metadata = { invoice_id = ppd.uuid } })
      check(gs.payments:mark_paid(p.id, { payment_form = "03" }))   -- paid, no complement yet
      local s = month_end.run(gs, { month = "2026-11", dir = dir, stamp = true })
      assert.same({ 1, 1 }, { s.receipts_stamped, s.receipts_pending })
      assert.equals(1, #s.owed)
      assert.same({ p.id, ppd.uuid, "2026-12-05" }, { s.owed[1].payment, s.owed[1].invoice, s.owed[1].deadline })
      assert.equals(2, s.invoices)                                   -- the PPD and the stamped receipt's
      local f = assert(io.open(dir .. "/invoices-2026-11.csv"))
      local text = f:read("a")
      f:close()
      assert.matches("^uuid,type,folio,rfc,total", text)
      assert.truthy(text:find(ppd.uuid, 1, true))
      local empty = month_end.run(gs, { month = "2026-10", stamp = false })
      assert.same({ 0, 0 }, { empty.invoices, empty.payments })
    end)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("ppd complements sweep", function()
  it("issues each owed complement once, and a second sweep issues none", function()
    support.with_mock(function(gs)
      local ppd = require "gigstack.workflows.ppd_complements"
      local c = check(gs.clients:create{ legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601",
        address = { zip = "06600" } })
      for _ = 1, 3 do
        local inv = check(gs.invoices:create{ client = { id = c.id }, items = { ITEM }, payment_method = "PPD",
          payment_form = "99" })
        local p = check(gs.payments:request{ client = { id = c.id }, items = { ITEM },
          metadata = { invoice_id = inv.uuid } })
        check(gs.payments:mark_paid(p.id, { payment_form = "03" }))
      end
      assert.equals(3, (ppd.sweep(gs)))
      assert.equals(0, (ppd.sweep(gs)))
      assert.equals(3, check(gs.complements:list()).total_results)
      assert.equals(0, check(gs.invoices:list{ payment_method = "PPD" }).data[1].last_balance)
    end)
  end)
end)

describe("auto-invoice from payments", function()
  it("invoices succeeded payments without an invoice once; a re-run invoices none", function()
    support.with_mock(function(gs)
      local auto = require "gigstack.workflows.auto_invoice"
      local c = check(gs.clients:create{ legal_name = "X", tax_id = "SAT970701NN3", tax_system = "601",
        address = { zip = "06600" } })
      for _ = 1, 4 do
        check(gs.payments:register{ client = { id = c.id }, items = { ITEM }, payment_form = "03" })
      end
      local first = auto.from_payments(gs)
      assert.same({ 4, 0, 0 }, { first.invoiced, first.skipped, #first.failures })
      local again = auto.from_payments(gs)
      assert.same({ 0, 0 }, { again.invoiced, #again.failures })
      assert.equals(4, check(gs.invoices:list()).total_results)
      local p = check(gs.payments:list{ limit = 1 }).data[1]
      local _, dup = gs.invoices:create({ client = { id = c.id }, items = { ITEM }, payment_id = p.id,
        payment_form = "03" }, { validate = false })
      assert.equals(409, dup.status)
    end)
  end)
end)
