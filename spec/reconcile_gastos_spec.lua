-- Reconciling gastos: the month's received SAT CFDIs against the
-- payments made to suppliers, through the SDK against the emulator's
-- seeded SAT mirror of team_mock (RFC MMA010101AB1).
local gigstack = require "gigstack"
local json = require "gigstack.async.json"
local reconcile = require "gigstack.workflows.reconcile_gastos"
local support = require "support"

local check = gigstack.check

-- October 2026 in the emulator's seeded mirror, received by team_mock
-- (lua/gigstack/mock/sat_download.lua MIRROR; totals = subtotal * 1.16):
--   10-02 GAPJ800101AB1 15000.00 -> 17400.00
--   10-09 PDO010101AB3    862.50 ->  1000.50
--   10-12 TCM970625MB1    499.00 ->   578.84  (no XML yet)
--   10-20 SRV150310KM2   3450.00 ->  4002.00  Cancelado
--   10-31 SRV150310KM2   3450.00 ->  4002.00  (no XML yet)
-- plus one added below with the test hook (paid by UUID reference).
local PAYMENTS = {
  { date = "2026-10-05", rfc = "GAPJ800101AB1", amount = "17400.00", reference = "transferencia 881" },
  { date = "2026-10-15", rfc = "pdo010101ab3", amount = "1000.50" },
  { date = "2026-11-03", rfc = "SRV150310KM2", amount = "4002.00", reference = "SPEI 1203" },
  { date = "2026-10-20", rfc = "XAXX010101000", amount = "2320.00", reference = "sin factura" },
}

local function find(list, field, value)
  for _, v in ipairs(list) do if v[field] == value then return v end end
end

describe("reconcile_gastos workflow", function()
  it("matches by UUID reference, then by RFC and amount; reports unmatched CFDIs and payments", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    support.with_mock(function(gs)
      check(gs.sat_download:activate())
      local added = check(gs:request("POST", "/_mock/sat/invoices", { body = { direction = "received",
        issue_date = "2026-10-25T10:00:00", issuer = { rfc = "PDO010101AB3", name = "PAPELERIA DE OFICINA SA DE CV" },
        receiver = { rfc = "MMA010101AB1", name = "MOCK MASTER SA DE CV" }, total = 1000.5, subtotal = 862.5 } })).data
      local payments = {}
      for i, p in ipairs(PAYMENTS) do payments[i] = p end
      -- paid by its UUID, same supplier and amount as the 10-09 one: the reference decides
      payments[#payments + 1] = { date = "2026-10-26", rfc = "PDO010101AB3", amount = "1000.50",
        reference = "factura " .. added.uuid:lower() }
      local r = reconcile.run(gs, { month = "2026-10", payments = payments, dir = dir })
      assert.same({ 4, 1, 1, 1 }, { #r.matched, #r.unmatched_cfdis, #r.unmatched_payments, #r.cancelled })
      assert.equals("TCM970625MB1", r.unmatched_cfdis[1].issuer_rfc)
      assert.equals("578.84", r.unmatched_cfdis[1].total)
      assert.equals("XAXX010101000", r.unmatched_payments[1].issuer_rfc)
      assert.equals("SRV150310KM2", r.cancelled[1].issuer_rfc)
      local by_uuid = find(r.matched, "uuid", added.uuid)
      assert.same({ "uuid", "2026-10-26" }, { by_uuid.rule, by_uuid.payment_date })
      -- the 10-31 SRV CFDI (Vigente) takes the November payment, not the cancelled one
      local srv = find(r.matched, "issuer_rfc", "SRV150310KM2")
      assert.same({ "rfc_amount", "2026-11-03", "Vigente" }, { srv.rule, srv.payment_date, srv.status })
      assert.same({ "MXN", false }, { srv.currency, srv.has_xml })
      -- files: CSV of every line, JSON of the whole result
      local f = assert(io.open(dir .. "/gastos-2026-10.csv"))
      local csv = f:read("a")
      f:close()
      assert.matches("^result,uuid,issuer_rfc,issuer_name,issue_date,total,currency,status,has_xml,payment_date,"
        .. "payment_amount,payment_reference,rule\n", csv)
      local _, lines = csv:gsub("\n", "")
      assert.equals(1 + 4 + 1 + 1 + 1, lines)   -- header, matched, unmatched CFDI, unmatched payment, cancelled
      f = assert(io.open(dir .. "/gastos-2026-10.json"))
      local doc = json.decode(f:read("a"))
      f:close()
      assert.same({ "2026-10", 4, 1 }, { doc.month, #doc.matched, #doc.unmatched_cfdis })
    end)
    os.execute("rm -rf " .. dir)
  end)

  it("reads payments from a CSV file and refuses bad rows naming the line", function()
    support.with_mock(function(gs)
      check(gs.sat_download:activate())
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write("date,rfc,amount,reference\n2026-10-05,GAPJ800101AB1,17400.00,x\n2026-10-06,GAPJ800101AB1,abc,y\n")
      f:close()
      local ok, err = pcall(reconcile.run, gs, { month = "2026-10", payments_file = path })
      assert.is_false(ok)
      assert.matches("line 3: amount", tostring(err))
      f = assert(io.open(path, "wb"))
      f:write("date,rfc,amount\n2026-10-05,GAPJ800101AB1,17400.00\n")
      f:close()
      local r = reconcile.run(gs, { month = "2026-10", payments_file = path })
      -- October's Vigente received CFDIs are GAPJ, PDO, TCM and the 10-31 SRV: one paid, three not
      assert.same({ 1, 3 }, { #r.matched, #r.unmatched_cfdis })
      os.remove(path)
      local bad_month = select(2, pcall(reconcile.run, gs, { month = "octubre", payments = {} }))
      assert.matches("month must be YYYY%-MM", tostring(bad_month))
    end)
  end)

  it("says when the SAT download service is not active", function()
    support.with_mock(function(gs)
      local ok, err = pcall(reconcile.run, gs, { month = "2026-10", payments = {} })
      assert.is_false(ok)
      assert.matches("not active", tostring(err))
    end)
  end)
end)
