--- Month-end: stamp (or report) pending receipts, export the month's
-- invoices and payments as CSV, and list payment complements still owed
-- (paid PPD invoices without one; the SAT deadline is the 5th of the
-- next month).
local money = require "gigstack.fiscal.money"
local tz = require "gigstack.fiscal.tz"
local report = require "gigstack.runner.report"
local options = require "gigstack.workflows.options"

local M = {}

local function month_bounds(month)
  local y, m = tostring(month or ""):match("^(%d%d%d%d)%-(%d%d)$")
  y, m = tonumber(y), tonumber(m)
  if not y or m < 1 or m > 12 then error("month_end: month must be YYYY-MM, got " .. tostring(month), 3) end
  local ny, nm = m == 12 and y + 1 or y, m == 12 and 1 or m + 1
  return tz.days(y, m, 1) * 86400, tz.days(ny, nm, 1) * 86400, string.format("%04d-%02d-05", ny, nm)
end

local function seconds(t)
  t = tonumber(t) or 0
  return t > 1e11 and t // 1000 or t    -- the older generation uses ms
end

local function csv_field(v)
  v = v == nil and "" or tostring(v)
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function write_csv(path, cols, rows)
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(cols, ","), "\n")
  for _, r in ipairs(rows) do
    local out = {}
    for i, c in ipairs(cols) do out[i] = csv_field(r[c]) end
    f:write(table.concat(out, ","), "\n")
  end
  f:close()
end

--- opts: month ("YYYY-MM"), dir (for the CSV files), stamp (true: stamp
-- pending receipts of clients with fiscal data), team.
function M.run(gs, opts)
  opts = options.check("month_end.run", opts, { "month", "dir", "stamp", "team" })
  local from, to, deadline = month_bounds(opts.month)
  local q = { limit = 100, team = opts.team }
  local function in_month(o) local t = seconds(o.created_at or o.timestamp) return t >= from and t < to end
  local out = { receipts_stamped = 0, receipts_pending = 0, invoices = 0, payments = 0, owed = {} }

  for r in gs.receipts:each(q) do
    if r.status == "pending" then
      local fiscal = type(r.client) == "table" and r.client.tax_id
      if opts.stamp and fiscal then
        local ok, err = gs.receipts:stamp(r.id, { team = opts.team })
        if ok then
          out.receipts_stamped = out.receipts_stamped + 1
          report.add{ item = r.id, outcome = "done", action = "receipt stamped", invoice = ok.invoice_id }
        else
          report.add{ item = r.id, outcome = "failed", action = "receipt stamp", error = tostring(err) }
        end
      else
        out.receipts_pending = out.receipts_pending + 1
        report.add{ item = r.id, outcome = "skipped", action = "receipt pending",
          reason = fiscal and "stamping off" or "client without fiscal data (goes to the global invoice)" }
      end
    end
  end

  local invoices = {}
  for _, list in ipairs{ gs.invoices, gs.egress, gs.complements } do
    for inv in list:each(q) do
      if in_month(inv) then
        invoices[#invoices + 1] = { uuid = inv.uuid, type = inv.invoice_type,
          folio = tostring(inv.series) .. "-" .. tostring(inv.folio_number),
          rfc = type(inv.client) == "table" and inv.client.tax_id or "", total = tostring(inv.total),
          currency = inv.currency, status = inv.status, payment_method = inv.payment_method or "",
          last_balance = tostring(inv.last_balance or ""), created_at = os.date("!%Y-%m-%d", seconds(inv.created_at)) }
      end
    end
  end
  out.invoices = #invoices

  local payments, complemented = {}, {}
  for rep in gs.complements:each(q) do
    if rep.payment_id then complemented[rep.payment_id] = true end
  end
  for p in gs.payments:each(q) do
    if in_month(p) then
      payments[#payments + 1] = { id = p.id, status = p.status,
        total = tostring(p.total or money.format(p.amount or 0)),
        currency = p.currency, client = type(p.client) == "table" and (p.client.tax_id or "") or "",
        invoice = p.invoice_id or "", created_at = os.date("!%Y-%m-%d", seconds(p.created_at or p.timestamp)) }
      local uuid = type(p.metadata) == "table" and p.metadata.invoice_id
      if p.status == "succeeded" and uuid and not complemented[p.id] then
        local inv = gs.invoices:get(uuid, { team = opts.team })
        if inv and inv.payment_method == "PPD" and (money.cents(tostring(inv.last_balance)) or 0) > 0 then
          out.owed[#out.owed + 1] = { payment = p.id, invoice = uuid, amount = tostring(p.total), deadline = deadline }
          report.add{ item = p.id, outcome = "skipped", action = "complement owed", invoice = uuid,
            deadline = deadline }
        end
      end
    end
  end
  out.payments = #payments

  if opts.dir then
    local month = opts.month
    out.files = { opts.dir .. "/invoices-" .. month .. ".csv", opts.dir .. "/payments-" .. month .. ".csv",
      opts.dir .. "/complements-owed-" .. month .. ".csv" }
    write_csv(out.files[1], { "uuid", "type", "folio", "rfc", "total", "currency", "status", "payment_method",
      "last_balance", "created_at" }, invoices)
    write_csv(out.files[2], { "id", "status", "total", "currency", "client", "invoice", "created_at" }, payments)
    write_csv(out.files[3], { "payment", "invoice", "amount", "deadline" }, out.owed)
  end
  return out
end

return M
