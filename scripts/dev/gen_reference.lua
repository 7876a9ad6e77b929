-- Writes docs/reference.md from gigstack.resources.OPERATIONS:
--   lua5.4 scripts/dev/gen_reference.lua > docs/reference.md
-- spec/reference_spec.lua fails when a method and a row disagree.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local resources = require "gigstack.resources"

local EXAMPLES = {
  ["clients:create"] = [[{ legal_name = "JUAN PEREZ", tax_id = "CAMA911215CJ0", tax_system = "612", address = { zip = "03100" } }]],
  ["clients:update"] = [["client_…", { email = "nuevo@ejemplo.mx" }]],
  ["clients:portal"] = [[{ email = "juan@ejemplo.mx" }]],
  ["services:create"] = [[{ description = "Consultoría", unit_price = 1500, product_key = "81111500", unit_key = "E48" }]],
  ["services:update"] = [["service_…", { unit_price = 1800 }]],
  ["invoices:create"] = [[{ client = { id = "client_…" }, items = { { description = "x", quantity = 1, unit_price = 100, taxes = { { type = "IVA", rate = 0.16 } } } }, payment_form = "03", payment_method = "PUE" }]],
  ["invoices:send"] = [["<uuid>", { emails = { "a@b.mx" } }]],
  ["invoices:cancel"] = [["<uuid>", { motive = "01", replacement = "<new uuid>" }]],
  ["egress:create"] = [[{ client = { id = "client_…" }, items = { … }, payment_form = "03", related_documents = { { uuid = "<uuid>", relation = "01" } } }]],
  ["payments:create"] = [[{ clientId = "client_…", items = { { name = "x", total = 1500 } }, paid = true, paymentMethod = "03" }]],
  ["payments:request"] = [[{ client = { id = "client_…" }, items = { … }, automation_type = "ppd_invoice_and_complement" }]],
  ["payments:register"] = [[{ client = { search = { on_key = "tax_id", on_value = "CAMA911215CJ0", auto_create = true }, … }, items = { … }, automation_type = "pue_invoice", payment_form = "03" }, { idempotency_key = "sale-1" }]],
  ["payments:mark_paid"] = [["payment_…", { payment_form = "03" }]],
  ["payments:refund"] = [["payment_…", { amount = 100, reason = "devolución" }]],
  ["complements:create"] = [[{ invoice_id = "<PPD invoice uuid>", amount = 580, payment_form = "03" }]],
  ["receipts:create"] = [[{ client = { id = "client_…" }, items = { … } }]],
  ["receipts:update"] = [["receipt_…", { items = { … } }]],
  ["receipts:stamp"] = [["receipt_…", { fiscal_information = { legal_name = "…", tax_id = "…", tax_system = "612", zip = "03100" } }]],
  ["teams:create"] = [[{ name = "Sucursal Norte" }]],
  ["teams:update"] = [["team_…", { name = "Sucursal Norte" }]],
  ["teams:create_series"] = [["team_…", { name = "F" }]],
  ["teams:update_series"] = [["team_…", "series_…", { live = 100 }]],
  ["teams:settings"] = [["team_…", { split_billing = true, split_amount = 10, metadata_split_keys = { "vendor_id" } }]],
  ["teams:add_member"] = [["team_…", { id = "user_…", role = "editor" }]],
  ["teams:remove_member"] = [["team_…", { id = "user_…" }]],
  ["users:create"] = [[{ email = "ana@ejemplo.mx", first_name = "Ana", role = "member" }]],
  ["users:update"] = [["user_…", { phone = "+52 55 0000 0000" }]],
  ["users:reset_password"] = [[{ email = "ana@ejemplo.mx" }]],
  ["users:login_link"] = [[{ user_id = "user_…" }]],
  ["webhooks:create"] = [[{ url = "https://example.com/hook", events = { "payment.succeeded" } }]],
  ["webhooks:update"] = [["wh_…", { status = "inactive" }]],
}

local function example(op)
  local key = op[1] .. ":" .. op[2]
  local kind = op[3]
  local ids = {}
  for _ in op[5]:gmatch("{}") do ids[#ids + 1] = '"' .. (op[1] == "teams" and "team_…" or "<id>") .. '"' end
  local args = EXAMPLES[key]
  if not args then
    if kind == "list" then args = "{ limit = 10 }"
    elseif kind == "search" then args = '"perez"'
    elseif kind == "call" then args = ""
    else args = table.concat(ids, ", ") end
  end
  return string.format("gs.%s:%s(%s)", op[1], op[2], args)
end

io.write([[
# API reference: every endpoint and its SDK method

`gs = gigstack.new{...}`. Every method takes a last options table: `team`
(gigstack Connect: act on another team of the billing account), `timeout`,
`deadline`, `retries`, `validate = false`, `idempotency_key`. List methods
take query parameters (`limit`, `next`, filters) and have `each` that follows
every page: `for p in gs.payments:each{ status = "succeeded" } do … end`.
Calls return the object (or a page for lists), or `nil, err`.
`gs.invoices.egress`, `.complements` and `.drafts` are the same objects as
`gs.egress`, `gs.complements` and `gs.drafts`.

| Endpoint | SDK method | Example |
|---|---|---|
]])
for _, op in ipairs(resources.OPERATIONS) do
  io.write(string.format("| `%s /v2%s` | `gs.%s:%s` | `%s` |\n", op[4], op[5]:gsub("{}", "{id}"), op[1], op[2],
    example(op):gsub("|", "\\|")))
end
io.write([[

Emulator only (tests): `GET /v2/_mock/events` lists the webhook events every
state change recorded; `GET /files/{team}/{uuid}.xml|pdf` serves invoice files
(the URLs `gs.invoices:files` returns).
]])
