--- Split billing for marketplaces (gigstack Connect). Each order
-- becomes a payment on the master team carrying the vendor's key in its
-- metadata (mode "split": gigstack answers transfer_data), or a payment
-- created for the vendor team with the team parameter (mode "connect").
-- The settlement report gives each vendor's gross, commission and net in
-- exact cents: net + commission = gross for every order and every vendor.
local gigstack = require "gigstack"
local money = require "gigstack.fiscal.money"
local report = require "gigstack.runner.report"
local options = require "gigstack.workflows.options"

local M = {}

--- orders: {id, vendor (team id), client (client id), total (decimal
-- string, units), description}. opts: mode ("split" | "connect"),
-- master (team id, split mode), commission (percent, connect mode),
-- concurrency. Returns {vendors = {[team] = {orders, gross, commission,
-- net}}, totals = {...}, failures = {...}}.
function M.run(gs, orders, opts)
  opts = options.check("split_billing.run", opts, { "mode", "master", "commission", "concurrency" })
  local mode = opts.mode or "split"
  local keep   -- percent the master keeps
  if mode == "split" then
    local team = gigstack.check(gs.teams:get(opts.master or "team_mock"))
    if not team.split_billing then
      error("split_billing: team " .. team.id .. " has split_billing off (gs.teams:settings)", 2)
    end
    keep = team.split_amount or 0
  else
    keep = opts.commission or 10
  end
  local clients = {}
  local results = gigstack.map(orders, opts.concurrency or 8, function(o)
    local gross = assert(money.cents(o.total))
    if mode == "split" then
      local p = gigstack.check(gs.payments:create({ clientId = o.client,
        items = { { name = o.description or ("Pedido " .. o.id), quantity = 1, total = money.json(gross) } },
        metadata = { vendor_id = o.vendor, internalId = "split:" .. o.id } }))
      local td = p.transfer_data
      if type(td) ~= "table" or td.destination ~= o.vendor or td.split ~= 100 - keep then
        error(string.format("order %s: transfer_data %s does not send %d%% to %s", o.id,
          td and (tostring(td.destination) .. "/" .. tostring(td.split)) or "missing", 100 - keep, o.vendor))
      end
      if p.amount ~= gross then error("order " .. o.id .. ": amount " .. p.amount .. " ≠ " .. gross) end
      return { payment = p.id, gross = gross, vendor_pct = td.split }
    end
    -- the vendor team has its own clients: find or create the buyer there by RFC
    local buyer = clients[o.client]
    if not buyer then
      buyer = gigstack.check(gs.clients:get(o.client))
      clients[o.client] = buyer
    end
    local p = gigstack.check(gs.payments:register({ client = { legal_name = buyer.legal_name,
        tax_id = buyer.tax_id, tax_system = buyer.tax_system, address = buyer.address, email = buyer.email,
        search = { on_key = "tax_id", on_value = buyer.tax_id, auto_create = true } },
      items = { { description = o.description or ("Pedido " .. o.id), quantity = 1,
        unit_price = money.json(gross) } }, automation_type = "none" },
      { team = o.vendor, idempotency_key = "split:" .. o.id, validate = false }))
    return { payment = p.id, gross = gross, vendor_pct = 100 - keep }
  end)
  local out = { vendors = {}, totals = { orders = 0, gross = 0, commission = 0, net = 0 }, failures = {} }
  for i, r in ipairs(results) do
    local o = orders[i]
    if r[1] then
      local v = r[2]
      local parts = assert(money.allocate(money.json(v.gross).text, { v.vendor_pct, 100 - v.vendor_pct }))
      local net, commission = parts[1]:units(2), parts[2]:units(2)
      local s = out.vendors[o.vendor] or { orders = 0, gross = 0, commission = 0, net = 0 }
      out.vendors[o.vendor] = s
      s.orders, s.gross, s.commission, s.net = s.orders + 1, s.gross + v.gross, s.commission + commission, s.net + net
      local t = out.totals
      t.orders, t.gross, t.commission, t.net = t.orders + 1, t.gross + v.gross, t.commission + commission, t.net + net
      report.add{ item = o.id, outcome = "done", vendor = o.vendor, payment = v.payment,
        gross = money.format(v.gross), commission = money.format(commission), net = money.format(net) }
    else
      out.failures[#out.failures + 1] = { order = o.id, error = r[2] }
      report.add{ item = o.id, outcome = "failed", vendor = o.vendor, error = tostring(r[2]) }
    end
  end
  return out
end

--- The settlement table as text lines.
function M.format(s)
  local lines = { string.format("%-24s %7s %14s %14s %14s", "vendor", "orders", "gross", "commission", "net") }
  local names = {}
  for name in pairs(s.vendors) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local v = s.vendors[name]
    lines[#lines + 1] = string.format("%-24s %7d %14s %14s %14s", name, v.orders, money.format(v.gross),
      money.format(v.commission), money.format(v.net))
  end
  local t = s.totals
  lines[#lines + 1] = string.format("%-24s %7d %14s %14s %14s", "total", t.orders, money.format(t.gross),
    money.format(t.commission), money.format(t.net))
  return lines
end

return M
