--- Auto-invoicing: register each sale as an already-collected payment
-- with automation_type "pue_invoice", so gigstack stamps a PUE income
-- invoice for it. Each sale's idempotency key derives from its id, so a
-- re-run never registers a sale twice.
local gigstack = require "gigstack"
local csv = require "gigstack.runner.csv"
local json = require "gigstack.async.json"
local money = require "gigstack.fiscal.money"
local report = require "gigstack.runner.report"

local M = {}

local COLUMNS = { "sale_id", "customer_name", "rfc", "tax_system", "zip", "email",
  "description", "product_key", "unit_key", "quantity", "unit_price", "iva_rate",
  "payment_form" }

--- Group CSV rows (one item per row) into sales; validates each field.
-- Returns sales or nil, list of problems "line N: field: rule".
function M.sales_from_rows(rows)
  local sales, by_id, problems = {}, {}, {}
  for _, row in ipairs(rows) do
    local function bad(field, rule)
      problems[#problems + 1] = string.format("line %d: %s: %s", row._line, field, rule)
    end
    for _, col in ipairs(COLUMNS) do
      if row[col] == nil then bad(col, "column is missing") end
    end
    if #problems == 0 then
      local price, perr = money.cents(row.unit_price)
      if not price then bad("unit_price", perr) end
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

--- Register every sale with at most opts.concurrency calls in flight.
-- With opts.journal (gigstack.runner.journal) a sale done in an earlier run is
-- skipped, and the idempotency key comes from the journal key.
-- Returns a summary {sales, payments, invoices, failures = {{sale, error}}}.
-- With opts.batch (a name) as well, the runners started on the same batch
-- split the sales between them (journal:map): each handles some, and the
-- summary counts this runner's (summary.elsewhere: handled by others).
function M.run(gs, sales, opts)
  opts = opts or {}
  if opts.batch and not opts.journal then error("auto_invoice.run: opts.batch needs opts.journal", 2) end
  local mapper = opts.batch and function(list, n, fn)
    return (opts.journal:map(opts.batch, list, n, fn, { key = function(sale) return sale.id end }))
  end or gigstack.map
  local results = mapper(sales, opts.concurrency or 8, function(sale)
    local body = M.payment_body(sale)
    if not opts.journal then return gigstack.check(gs.payments:register(body)) end
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
--- Invoice (PUE) every succeeded payment that has none yet. A payment
-- invoiced meanwhile answers 409 and counts as skipped, so a re-run
-- never invoices twice. Returns {invoiced, skipped, failures}.
function M.from_payments(gs, opts)
  opts = opts or {}
  local todo = {}
  for p in gs.payments:each{ limit = 100, status = "succeeded", team = opts.team } do
    if not p.invoice_id and type(p.client) == "table" and p.client.id and type(p.items) == "table" then
      todo[#todo + 1] = p
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
  local rows, err = csv.read(path)
  if not rows then return nil, { path .. ": " .. err } end
  return M.sales_from_rows(rows)
end

return M
