--- Reconcile gastos: the month's CFDIs received (mirrored from the SAT
-- by gigstack's download service) against the payments made to
-- suppliers (a bank export: date, rfc, amount, currency?, reference?).
--
-- Matching, one payment per CFDI and one CFDI per payment:
--   1. "uuid": the payment's reference contains the CFDI's UUID;
--   2. "rfc_amount": same issuer RFC, currency and total to the cent,
--      the payment dated no earlier than `tolerance_days` before the
--      CFDI; among candidates the CFDI nearest in date wins, Vigente
--      before Cancelado.
-- Reported: matched pairs, CFDIs not paid (unmatched_cfdis, Vigente
-- only), payments of the month with no CFDI (unmatched_payments: not
-- deductible without one), cancelled CFDIs not paid (cancelled) and
-- cancelled ones that were paid (paid_cancelled).
local money = require "gigstack.fiscal.money"
local csv = require "gigstack.runner.csv"
local report = require "gigstack.runner.report"
local tz = require "gigstack.fiscal.tz"
local json = require "gigstack.async.json"

local M = {}

local function month_bounds(month)
  local y, m = tostring(month or ""):match("^(%d%d%d%d)%-(%d%d)$")
  y, m = tonumber(y), tonumber(m)
  if not y or m < 1 or m > 12 then error("reconcile_gastos: month must be YYYY-MM, got " .. tostring(month), 3) end
  local ny, nm = m == 12 and y + 1 or y, m == 12 and 1 or m + 1
  return tz.days(y, m, 1), tz.days(ny, nm, 1)   -- days since the epoch: [first, next month's first)
end

local function day_of(date)
  local y, m, d = tostring(date or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)")
  if not y then return nil end
  return tz.days(tonumber(y), tonumber(m), tonumber(d))
end

-- Payment rows, checked: {date, rfc, amount, currency, reference, line}.
local function payments_of(rows)
  local out = {}
  for i, r in ipairs(rows) do
    local where = "payments: line " .. (r._line or i) .. ": "
    local day = day_of(r.date)
    if not day then error(where .. "date must be YYYY-MM-DD, got " .. tostring(r.date), 3) end
    if type(r.rfc) ~= "string" or r.rfc == "" then error(where .. "rfc is required", 3) end
    local cents = money.cents(r.amount)
    if not cents or (type(r.amount) == "string" and not r.amount:match("^%-?%d+%.?%d*$")) then
      error(where .. "amount must be a decimal number, got " .. tostring(r.amount), 3)
    end
    out[#out + 1] = { date = r.date:sub(1, 10), day = day, rfc = r.rfc:upper(), cents = cents,
      currency = (r.currency and r.currency ~= "") and r.currency:upper() or "MXN",
      reference = r.reference or "", id = r.id, line = r._line or i }
  end
  return out
end

local function line(kind, cfdi, pay, rule)
  local out = { result = kind, uuid = "", issuer_rfc = "", issuer_name = "", issue_date = "", total = "",
    currency = "", status = "", has_xml = "", payment_date = "", payment_amount = "", payment_reference = "",
    rule = rule or "" }
  if cfdi then
    out.uuid, out.issuer_rfc, out.issuer_name = cfdi.uuid, cfdi.issuer_rfc, cfdi.issuer_name
    out.issue_date, out.total, out.currency = cfdi.issue_date, money.format(cfdi.cents), cfdi.currency
    out.status, out.has_xml = cfdi.status, cfdi.has_xml
  end
  if pay then
    out.payment_date, out.payment_amount = pay.date, money.format(pay.cents)
    out.payment_reference = pay.reference
    if not cfdi then out.currency = pay.currency; out.issuer_rfc = pay.rfc end
  end
  return out
end

local COLUMNS = { "result", "uuid", "issuer_rfc", "issuer_name", "issue_date", "total", "currency", "status",
  "has_xml", "payment_date", "payment_amount", "payment_reference", "rule" }

local function csv_field(v)
  v = v == nil and "" or tostring(v)
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

--- opts: month ("YYYY-MM"), payments (rows) or payments_file (CSV with
-- date, rfc, amount[, currency, reference, id]), tolerance_days (5),
-- dir (writes gastos-<month>.csv and .json), team.
function M.run(gs, opts)
  opts = opts or {}
  local first, next_first = month_bounds(opts.month)
  local rows = opts.payments
  if not rows then
    if not opts.payments_file then error("reconcile_gastos: payments or payments_file is required", 2) end
    local err
    rows, err = csv.read(opts.payments_file)
    if not rows then error("reconcile_gastos: " .. opts.payments_file .. ": " .. tostring(err), 2) end
  end
  local payments = payments_of(rows)
  local tolerance = opts.tolerance_days or 5

  local status = gs.sat_download:status{ team = opts.team }
  if status and status.status ~= "active" then
    error("reconcile_gastos: the SAT download service is not active for this team (" .. status.status
      .. "); activate it with gs.sat_download:activate() or in app.gigstack.pro/gastos", 2)
  end

  -- the month's received CFDIs, oldest first
  local cfdis = {}
  for inv in gs.sat_invoices:each{ direction = "received", from = opts.month, to = opts.month, limit = 100,
    team = opts.team } do
    local issuer = type(inv.issuer) == "table" and inv.issuer or {}
    cfdis[#cfdis + 1] = { uuid = inv.uuid, issuer_rfc = tostring(issuer.rfc or ""):upper(),
      issuer_name = issuer.name or "", issue_date = inv.issue_date, day = day_of(inv.issue_date),
      cents = money.cents(inv.total) or 0, currency = inv.currency or "MXN", status = inv.status,
      has_xml = inv.hasXml ~= false, invoice_type = inv.invoice_type }
  end
  table.sort(cfdis, function(a, b) return a.issue_date < b.issue_date end)

  local out = { month = opts.month, matched = {}, unmatched_cfdis = {}, unmatched_payments = {}, cancelled = {},
    paid_cancelled = {} }
  local paid_by, used = {}, {}
  local function pair(c, p, rule)
    paid_by[c.uuid], used[p] = p, true
    local l = line(c.status == "Cancelado" and "paid_cancelled" or "matched", c, p, rule)
    local list = c.status == "Cancelado" and out.paid_cancelled or out.matched
    list[#list + 1] = l
    report.add{ item = c.uuid, outcome = c.status == "Cancelado" and "failed" or "done",
      action = c.status == "Cancelado" and "paid a cancelled CFDI" or "matched", payment = p.date .. " " .. p.rfc,
      rule = rule }
  end
  -- 1. a UUID in the payment's reference
  for _, p in ipairs(payments) do
    local ref = p.reference:upper()
    for _, c in ipairs(cfdis) do
      if not paid_by[c.uuid] and not used[p] and ref:find(c.uuid:upper(), 1, true) then pair(c, p, "uuid") end
    end
  end
  -- 2. issuer RFC + currency + exact total; nearest date, Vigente first
  for _, p in ipairs(payments) do
    if not used[p] then
      local best
      for _, c in ipairs(cfdis) do
        if not paid_by[c.uuid] and c.issuer_rfc == p.rfc and c.currency == p.currency and c.cents == p.cents
          and c.day and p.day >= c.day - tolerance then
          local better = not best
            or (best.status == "Cancelado" and c.status ~= "Cancelado")
            or ((best.status == "Cancelado") == (c.status == "Cancelado")
              and math.abs(p.day - c.day) < math.abs(p.day - best.day))
          if better then best = c end
        end
      end
      if best then pair(best, p, "rfc_amount") end
    end
  end
  for _, c in ipairs(cfdis) do
    if not paid_by[c.uuid] then
      local cancelled = c.status == "Cancelado"
      local list = cancelled and out.cancelled or out.unmatched_cfdis
      list[#list + 1] = line(cancelled and "cancelled" or "unmatched_cfdi", c)
      report.add{ item = c.uuid, outcome = "skipped", action = cancelled and "cancelled CFDI, not paid"
        or "CFDI not paid", issuer = c.issuer_rfc, total = money.format(c.cents) }
    end
  end
  for _, p in ipairs(payments) do
    if not used[p] and p.day >= first and p.day < next_first then
      out.unmatched_payments[#out.unmatched_payments + 1] = line("unmatched_payment", nil, p)
      report.add{ item = "payment line " .. p.line, outcome = "skipped", action = "payment without a CFDI",
        rfc = p.rfc, amount = money.format(p.cents) }
    end
  end

  if opts.dir then
    local base = opts.dir .. "/gastos-" .. opts.month
    out.files = { base .. ".csv", base .. ".json" }
    local f = assert(io.open(out.files[1], "wb"))
    f:write(table.concat(COLUMNS, ","), "\n")
    for _, list in ipairs{ out.matched, out.paid_cancelled, out.unmatched_cfdis, out.unmatched_payments,
      out.cancelled } do
      for _, l in ipairs(list) do
        local cells = {}
        for i, col in ipairs(COLUMNS) do cells[i] = csv_field(l[col]) end
        f:write(table.concat(cells, ","), "\n")
      end
    end
    f:close()
    local doc = {}
    for k, v in pairs(out) do
      if k ~= "files" then doc[k] = type(v) == "table" and json.array(v) or v end
    end
    f = assert(io.open(out.files[2], "wb"))
    f:write(assert(json.encode(doc)), "\n")
    f:close()
  end
  return out
end

return M
