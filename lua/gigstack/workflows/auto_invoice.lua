--- Auto-invoicing: register each sale as an already-collected payment
-- with automation_type "pue_invoice", so gigstack stamps a PUE income
-- invoice for it. Each sale's idempotency key derives from its id, so a
-- re-run never registers a sale twice.
local gigstack = require "gigstack"
local csv = require "gigstack.runner.csv"
local json = require "gigstack.async.json"
local money = require "gigstack.fiscal.money"
local report = require "gigstack.runner.report"
local tz = require "gigstack.fiscal.tz"
local options = require "gigstack.workflows.options"

local M = {}

local COLUMNS = { "sale_id", "customer_name", "rfc", "tax_system", "zip", "email",
  "description", "product_key", "unit_key", "quantity", "unit_price", "iva_rate",
  "payment_form" }

--- The header's problem in one line (missing columns, and what the
-- file has instead), or nil when every column is there.
function M.check_header(header)
  local have, missing = {}, {}
  for _, name in ipairs(header) do have[name] = true end
  for _, col in ipairs(COLUMNS) do
    if not have[col] then missing[#missing + 1] = col end
  end
  if #missing == 0 then return nil end
  return string.format("header: missing column%s %s; the file has: %s; expected: %s",
    #missing > 1 and "s" or "", table.concat(missing, ", "), table.concat(header, ", "), table.concat(COLUMNS, ","))
end

--- Group CSV rows (one item per row) into sales; validates each field.
-- header (from the CSV) is checked once, before the rows. Returns sales
-- or nil, list of problems "line N: field: rule".
function M.sales_from_rows(rows, header)
  local sales, by_id, problems = {}, {}, {}
  if header then
    local herr = M.check_header(header)
    if herr then return nil, { herr } end
  end
  local reported = {}   -- a column missing from JSON sales: said once
  for _, row in ipairs(rows) do
    local function bad(field, rule)
      problems[#problems + 1] = string.format("line %d: %s: %s", row._line, field, rule)
    end
    local complete = true
    for _, col in ipairs(COLUMNS) do
      if row[col] == nil then
        complete = false
        if not reported[col] then reported[col] = true; bad(col, "is missing") end
      end
    end
    if complete then
      local price, perr = money.cents(row.unit_price)
      if not price then bad("unit_price", perr)
      elseif price <= 0 then bad("unit_price", "must be greater than 0, got " .. row.unit_price) end
      local qty = tonumber(row.quantity)
      if not qty or qty <= 0 then bad("quantity", "must be a number greater than 0") end
      local rate = tonumber(row.iva_rate)
      if not rate or rate < 0 or rate > 0.16 then bad("iva_rate", "must be 0, 0.08 or 0.16") end
      if row.sale_id == "" then bad("sale_id", "is required") end
      local sale = by_id[row.sale_id]
      if not sale then
        sale = { id = row.sale_id, customer = { legal_name = row.customer_name,
          tax_id = row.rfc, tax_system = row.tax_system, zip = row.zip, email = row.email },
          payment_form = row.payment_form, items = {} }
        by_id[row.sale_id] = sale
        sales[#sales + 1] = sale
      end
      sale.items[#sale.items + 1] = { description = row.description,
        product_key = row.product_key, unit_key = row.unit_key,
        quantity = math.tointeger(qty) or qty, unit_price = price, iva_rate = row.iva_rate }
    end
  end
  if #problems > 0 then return nil, problems end
  return sales
end

--- The register body for one sale (money as exact decimals).
function M.payment_body(sale)
  local items = json.array()
  for i, it in ipairs(sale.items) do
    items[i] = {
      description = it.description, product_key = it.product_key, unit_key = it.unit_key,
      quantity = it.quantity, unit_price = money.json(it.unit_price),
      taxes = json.array{ { type = "IVA", rate = json.raw(it.iva_rate), factor = "Tasa",
        withholding = false } },
    }
  end
  local c = sale.customer
  return {
    automation_type = "pue_invoice", currency = "MXN", payment_form = sale.payment_form,
    client = { legal_name = c.legal_name, name = c.legal_name, tax_id = c.tax_id,
      tax_system = c.tax_system, email = c.email ~= "" and c.email or nil,
      address = { zip = c.zip }, use = "G03",
      search = { on_key = "tax_id", on_value = c.tax_id, auto_create = true } },
    items = items, metadata = { sale_id = sale.id },
    idempotency_key = "auto-invoice:" .. sale.id,
  }
end

-- What the summary and the report read of a registered payment. The map
-- holds one result per sale until the end: the whole decoded payment
-- (client, items, taxes...) is ~8 KB, so 10,000 of them made a 90 MB heap
-- that the GC walked during the batch and freed at exit (issue 12).
local function kept(p)
  if type(p) ~= "table" then return p end
  return { id = p.id, invoice_id = p.invoice_id, total = p.total, dry_run = p.dry_run,
    invoice = type(p.invoice) == "table" and { uuid = p.invoice.uuid } or nil }
end

--- Register every sale with at most opts.concurrency calls in flight.
-- With opts.journal (gigstack.runner.journal) a sale done in an earlier run is
-- skipped, and the idempotency key comes from the journal key.
-- Returns a summary {sales, payments, invoices, failures = {{sale, error}}}.
-- With opts.batch (a name) as well, the runners started on the same batch
-- split the sales between them (journal:map): each handles some, and the
-- summary counts this runner's (summary.elsewhere: handled by others).
function M.run(gs, sales, opts)
  opts = options.check("auto_invoice.run", opts, { "concurrency", "journal", "batch" })
  if opts.batch and not opts.journal then error("auto_invoice.run: opts.batch needs opts.journal", 2) end
  local mapper = opts.batch and function(list, n, fn)
    return (opts.journal:map(opts.batch, list, n, fn, { key = function(sale) return sale.id end }))
  end or gigstack.map
  local results = mapper(sales, opts.concurrency or 8, function(sale)
    local body = M.payment_body(sale)
    if not opts.journal then return kept(gigstack.check(gs.payments:register(body))) end
    return gigstack.check(opts.journal:once("auto_invoice:" .. sale.id, function(key)
      body.idempotency_key = key
      local p, err = gs.payments:register(body)
      if not p then return nil, err end
      return { id = p.id, invoice_id = p.invoice_id, total = p.total and tostring(p.total) }
    end))
  end)
  local summary = { sales = #sales, payments = 0, invoices = 0, failures = {}, total_cents = 0, elsewhere = 0 }
  for i = 1, #sales do
    local r = results[i]
    if not r then
      summary.elsewhere = summary.elsewhere + 1
    elseif r[1] then
      local p = r[2]
      report.add{ item = sales[i].id, outcome = p.dry_run and "dry_run" or "done", payment = p.id,
        invoice = p.invoice_id, total = p.total and tostring(p.total) or nil }
      summary.payments = summary.payments + 1
      if p.invoice_id or (type(p.invoice) == "table" and p.invoice.uuid) then
        summary.invoices = summary.invoices + 1
      end
      summary.total_cents = summary.total_cents + (money.cents(tostring(p.total)) or 0)
    else
      summary.failures[#summary.failures + 1] = { sale = sales[i].id, error = r[2] }
      report.add{ item = sales[i].id, outcome = "failed", error = tostring(r[2]) }
    end
  end
  return summary
end

--- Sales from a .csv (one item per row, see COLUMNS) or a .json file:
-- [{id, customer = {legal_name, tax_id, tax_system, zip, email},
--   payment_form, items = [{description, product_key, unit_key, quantity,
--   unit_price, iva_rate}]}]. JSON sales are flattened to rows so both
-- go through the same checks.
-- A since/until bound as unix seconds: a number is taken as is; a date
-- "YYYY-MM-DD" is that day's start (since) or end (until) in zone tz;
-- "YYYY-MM-DDTHH:MM:SSZ" is UTC.
local function instant(where, v, zone, is_end)
  if math.type(v) == "integer" then return v end
  if type(v) == "string" then
    local y, m, d, h, mi, sec = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
    if y then return tz.days(tonumber(y), tonumber(m), tonumber(d)) * 86400 + h * 3600 + mi * 60 + sec end
    y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if y then
      y, m, d = tonumber(y), tonumber(m), tonumber(d)
      if m >= 1 and m <= 12 and d >= 1 and d <= 31 then
        if not is_end then return tz.to_utc(zone, y, m, d, 0, 0) end
        local next_day = tz.civil(tz.days(y, m, d) * 86400 + 86400)
        return tz.to_utc(zone, next_day.year, next_day.month, next_day.day, 0, 0) - 1
      end
    end
  end
  error(string.format("%s: must be unix seconds (an integer), \"YYYY-MM-DD\" or \"YYYY-MM-DDTHH:MM:SSZ\", got %s",
    where, tostring(v)), 4)
end

local function created_seconds(p)
  local t = tonumber(p.created_at or p.created or p.timestamp)
  if not t then return nil end
  return t > 1e11 and t // 1000 or t    -- the older generation sends ms
end

--- Invoice (PUE) every succeeded payment that has none yet. A payment
-- invoiced meanwhile answers 409 and counts as skipped, so a re-run
-- never invoices twice. opts (any other key is an error):
--   since, until  created range, inclusive: unix seconds, "YYYY-MM-DD"
--                 (a whole day in `tz`) or "YYYY-MM-DDTHH:MM:SSZ"; sent as
--                 created[gte]/created[lte] and checked again here
--   tz            zone for dates (default "America/Mexico_City")
--   status        payment status to list (default "succeeded")
--   limit         invoice at most this many payments in this run
--   team, concurrency (default 8)
-- Returns {invoiced, skipped, failures}.
function M.from_payments(gs, opts)
  opts = options.check("auto_invoice.from_payments", opts,
    { "since", "until", "tz", "status", "limit", "team", "concurrency" })
  local zone_name = opts.tz or "America/Mexico_City"
  local zone, zerr = tz.zone(zone_name)
  if not zone then error("auto_invoice.from_payments: tz: " .. zerr, 2) end
  local since = opts.since ~= nil and instant("auto_invoice.from_payments: since", opts.since, zone, false) or nil
  local till = opts["until"] ~= nil and instant("auto_invoice.from_payments: until", opts["until"], zone, true) or nil
  if since and till and since > till then error("auto_invoice.from_payments: since is after until", 2) end
  if opts.limit ~= nil and (math.type(opts.limit) ~= "integer" or opts.limit < 1) then
    error("auto_invoice.from_payments: limit must be an integer >= 1", 2)
  end
  if opts.status ~= nil and type(opts.status) ~= "string" then
    error("auto_invoice.from_payments: status must be a string such as \"succeeded\"", 2)
  end
  local query = { limit = 100, status = opts.status or "succeeded", team = opts.team,
    ["created[gte]"] = since, ["created[lte]"] = till }
  local todo = {}
  for p in gs.payments:each(query) do
    local at = created_seconds(p)
    local in_range = not at or ((not since or at >= since) and (not till or at <= till))
    if in_range and not p.invoice_id and type(p.client) == "table" and p.client.id and type(p.items) == "table" then
      todo[#todo + 1] = p
      if opts.limit and #todo >= opts.limit then break end
    end
  end
  local out = { invoiced = 0, skipped = 0, failures = {} }
  local results = gigstack.map(todo, opts.concurrency or 8, function(p)
    return gs.invoices:create({ client = { id = p.client.id }, items = p.items, payment_id = p.id,
      payment_form = p.payment_form or "03", payment_method = "PUE", currency = p.currency,
      use = p.client.use }, { team = opts.team, validate = false })
  end)
  for i, r in ipairs(results) do
    local p, inv, err = todo[i], r[2], r[3]
    if r[1] and inv then
      out.invoiced = out.invoiced + 1
      report.add{ item = p.id, outcome = "done", invoice = inv.uuid }
    elseif r[1] and err and err.status == 409 then
      out.skipped = out.skipped + 1
      report.add{ item = p.id, outcome = "skipped", reason = "already invoiced" }
    else
      out.failures[#out.failures + 1] = { payment = p.id, error = r[1] and err or r[2] }
      report.add{ item = p.id, outcome = "failed", error = tostring(r[1] and err or r[2]) }
    end
  end
  return out
end

function M.read_sales(path)
  if path:lower():match("%.json$") then
    local f, ferr = io.open(path, "rb")
    if not f then return nil, { ferr } end
    local data, jerr = json.decode(f:read("a"))
    f:close()
    if type(data) ~= "table" then return nil, { path .. ": not a JSON array of sales: " .. tostring(jerr) } end
    local rows = {}
    for i, sale in ipairs(data) do
      local c = type(sale.customer) == "table" and sale.customer or {}
      for _, it in ipairs(type(sale.items) == "table" and sale.items or {}) do
        rows[#rows + 1] = { _line = i, sale_id = tostring(sale.id or ""), customer_name = c.legal_name,
          rfc = c.tax_id, tax_system = c.tax_system, zip = c.zip, email = c.email or "",
          description = it.description, product_key = it.product_key, unit_key = it.unit_key,
          quantity = tostring(it.quantity or 1), unit_price = tostring(it.unit_price),
          iva_rate = tostring(it.iva_rate or "0.16"), payment_form = sale.payment_form }
      end
    end
    return M.sales_from_rows(rows)
  end
  local rows, info = csv.read(path)
  if not rows then return nil, { path .. ": " .. info } end
  return M.sales_from_rows(rows, info.header)
end

return M
