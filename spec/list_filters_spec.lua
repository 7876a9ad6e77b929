-- List filters through the SDK against the emulator: created[gte] /
-- created[lte] windows, order_by + sort, payment status groups, and a
-- cursor that stays valid under them. Records are created at chosen
-- times with the emulator's X-Mock-Now test header (unix seconds).
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local paginate = require "gigstack.paginate"
local support = require "support"

local check = gigstack.check

-- 2026-01-01T00:00:00Z = 1735689600 (2025-01-01) + 365 * 86400
local Y2026 = 1767225600
-- days before each month of 2026 (not a leap year)
local CUM = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 }
local function mid_month(m) return Y2026 + (CUM[m] + 14) * 86400 + 43200 end   -- the 15th, 12:00 UTC
local MAR1 = Y2026 + 59 * 86400          -- 2026-03-01T00:00:00Z = 1772323200
local AUG31_END = Y2026 + 243 * 86400 - 1  -- 2026-08-31T23:59:59Z = 1788220799

local NAMES = { "Mario", "Ana", "Zoe", "Bruno", "Karla", "Diego", "Elena", "Hugo", "Ines", "Carlos",
  "Fer", "Gaby" }

local function at(t) return { headers = { ["X-Mock-Now"] = tostring(t) } } end

local function item(price)
  return { description = "Servicio", quantity = 1, unit_price = price, product_key = "81111500",
    unit_key = "E48", taxes = { { type = "IVA", rate = 0.16 } } }
end

-- One client per month (month m named NAMES[m]), each with a payment
-- link, a receipt and an invoice created in that month.
local function seed_year(gs)
  local clients = {}
  for m = 1, 12 do
    local t = mid_month(m)
    local c = check(gs.clients:create({ legal_name = NAMES[m]:upper(), name = NAMES[m], tax_id = "SAT970701NN3",
      tax_system = "601", email = NAMES[m]:lower() .. "@ejemplo.mx", address = { zip = "06600" } }, at(t)))
    assert.equals(t, c.created_at)
    clients[m] = c
    check(gs.payments:request({ client = { id = c.id }, items = { item(100 * m) } }, at(t)))
    check(gs.receipts:create({ client = { id = c.id }, items = { item(10 * m) } }, at(t)))
    check(gs.invoices:create({ client = { id = c.id }, items = { item(m) }, payment_form = "03" }, at(t)))
  end
  return clients
end

local function ids(list, field)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = field(v) end
  table.sort(out)
  return out
end

describe("list filters", function()
  it("a 6-month created window returns exactly its records on clients, payments, receipts and invoices", function()
    support.with_mock(function(gs)
      local clients = seed_year(gs)
      -- months 3..8 (March to August) are in the window
      local want = {}
      for m = 3, 8 do want[#want + 1] = clients[m].id end
      table.sort(want)
      local by_client = function(v) return v.client.id end
      local forms = {
        { created_gte = MAR1, created_lte = AUG31_END },
        { created = { gte = "2026-03-01", lte = "2026-08" } },   -- a date starts its day, a month ends on its last day
        { created = { gte = { year = 2026, month = 3, day = 1, hour = 0 }, lte = "2026-08-31T23:59:59Z" } },
      }
      for i, f in ipairs(forms) do
        f.limit = 100
        local page = check(gs.clients:list(f))
        assert.same(want, ids(page.data, function(c) return c.id end), "form " .. i)
        assert.equals(6, page.total_results)
      end
      for _, res in ipairs{ "payments", "receipts", "invoices" } do
        local page = check(gs[res]:list{ created_gte = MAR1, created_lte = AUG31_END, limit = 100 })
        assert.same(want, ids(page.data, by_client), res)
        -- `each` carries the filter to every page: 2 per page, 3 pages
        local seen = {}
        for v in gs[res]:each{ created = { gte = MAR1, lte = AUG31_END }, limit = 2 } do seen[#seen + 1] = v end
        assert.same(want, ids(seen, by_client), res .. " each")
      end
      -- the bounds are inclusive: a record at 23:59:59 is in, one a second later is out
      check(gs.clients:create({ legal_name = "BORDE", tax_id = "SAT970701NN3" }, at(AUG31_END)))
      check(gs.clients:create({ legal_name = "FUERA", tax_id = "SAT970701NN3" }, at(AUG31_END + 1)))
      local page = check(gs.clients:list{ created_gte = MAR1, created_lte = AUG31_END, limit = 100 })
      assert.equals(7, page.total_results)
      local second = check(gs.clients:list{ created = { gte = AUG31_END + 1, lte = AUG31_END + 1 } })
      assert.same({ "FUERA" }, { second.data[1].legal_name, second.data[2] })
    end)
  end)

  it("order_by=name sorts asc and desc across pages; the default is newest first", function()
    support.with_mock(function(gs)
      seed_year(gs)
      local asc, desc, newest = {}, {}, {}
      for c in gs.clients:each{ order_by = "name", sort = "asc", limit = 5 } do asc[#asc + 1] = c.name end
      for c in gs.clients:each{ order_by = "name", limit = 5 } do desc[#desc + 1] = c.name end
      for c in gs.clients:each{ limit = 5 } do newest[#newest + 1] = c.name end
      assert.same({ "Ana", "Bruno", "Carlos", "Diego", "Elena", "Fer", "Gaby", "Hugo", "Ines", "Karla",
        "Mario", "Zoe" }, asc)
      assert.same({ "Zoe", "Mario", "Karla", "Ines", "Hugo", "Gaby", "Fer", "Elena", "Diego", "Carlos",
        "Bruno", "Ana" }, desc)
      -- created months 12 down to 1
      assert.same({ "Gaby", "Fer", "Carlos", "Ines", "Hugo", "Elena", "Diego", "Karla", "Bruno", "Zoe",
        "Ana", "Mario" }, newest)
      -- filters and order together: March..August by name = Bruno Diego Elena Hugo Karla Zoe
      local both = check(gs.clients:list{ created_gte = MAR1, created_lte = AUG31_END, order_by = "name",
        sort = "asc", limit = 3 })
      assert.same({ "Bruno", "Diego", "Elena" }, { both.data[1].name, both.data[2].name, both.data[3].name })
      -- the cursor (Elena) is deleted before the next page: the page still follows it
      check(gs.clients:delete(both.data[3].id))
      local rest = check(gs.clients:list{ created_gte = MAR1, created_lte = AUG31_END, order_by = "name",
        sort = "asc", limit = 3, next = both.next })
      assert.same({ "Hugo", "Karla", "Zoe" }, { rest.data[1].name, rest.data[2].name, rest.data[3].name })
      assert.is_false(rest.has_more)
      -- a created-ordered collection created out of order is still listed by time
      check(gs.clients:create({ legal_name = "ANTIGUO", tax_id = "SAT970701NN3" }, at(Y2026 - 86400)))
      local oldest = check(gs.clients:list{ sort = "asc", limit = 1 })
      assert.equals("ANTIGUO", oldest.data[1].legal_name)
      local _, bad = gs.clients:list{ order_by = "color" }
      assert.same({ 400, "order_by" }, { bad.status, bad.details[1].field })
      local _, bad_sort = gs.clients:list{ sort = "up" }
      assert.same({ 400, "sort" }, { bad_sort.status, bad_sort.details[1].field })
    end)
  end)

  it("status=pending finds open payment links, not collected payments", function()
    support.with_mock(function(gs)
      local c = check(gs.clients:create{ legal_name = "JUAN PEREZ", tax_id = "CAMA911215CJ0", tax_system = "612",
        address = { zip = "03100" } })
      local open1 = check(gs.payments:request{ client = { id = c.id }, items = { item(100) } })
      local open2 = check(gs.payments:request{ client = { id = c.id }, items = { item(200) } })
      check(gs.payments:register{ client = { id = c.id }, items = { item(300) }, payment_form = "03",
        automation_type = "none" })
      local cancelled = check(gs.payments:request{ client = { id = c.id }, items = { item(400) } })
      check(gs.payments:cancel(cancelled.id))
      local want = { open1.id, open2.id }
      table.sort(want)
      local got = {}
      for p in gs.payments:each{ status = "pending", limit = 1 } do got[#got + 1] = p.id end
      table.sort(got)
      assert.same(want, got)
      assert.equals(1, check(gs.payments:list{ status = "succeeded" }).total_results)
      assert.equals(1, check(gs.payments:list{ status = "cancelled" }).total_results)
      local _, bad = gs.payments:list{ status = "paid" }
      assert.same({ 400, "status" }, { bad.status, bad.details[1].field })
      assert.matches("requires_payment_method", bad.message)
    end)
  end)

  it("refuses a bad date filter naming the field, in the SDK and on the wire", function()
    support.with_mock(function(gs)
      local _, e1 = gs.clients:list{ created_gte = "yesterday" }
      assert.same({ "validation", 0, "created_gte" }, { e1.kind, e1.status, e1.details[1].field })
      local _, e2 = gs.payments:list{ created = { lte = 1767225600000 } }   -- milliseconds
      assert.same({ "validation", "created.lte" }, { e2.kind, e2.details[1].field })
      assert.matches("seconds", e2.message)
      local _, e3 = gs.clients:list{ created = { gte = "2026-02-30" } }
      assert.same({ "validation", "created.gte" }, { e3.kind, e3.details[1].field })
      local _, e4 = gs:request("GET", "/clients", { query = { ["created[gte]"] = "abc" } })
      assert.same({ 400, "created[gte]" }, { e4.status, e4.details[1].field })
    end)
  end)

  it("sends the brackets percent-encoded", function()
    local q = assert(paginate.query{ created = { gte = "2026-03-01", lte = "2026-03" }, order_by = "name" })
    -- 2026-03-31T23:59:59Z = MAR1 + 31 * 86400 - 1 = 1775001599
    assert.equals("created%5Bgte%5D=1772323200&created%5Blte%5D=1775001599&order_by=name", http.encode_query(q))
  end)
end)
