--- Marketplace split billing: each order is a payment on the master team
-- carrying the vendor's key; gigstack splits it (transfer_data). Prints
-- the per-vendor settlement (gross, commission, net: exact cents).
--   gigstack-run --mock scripts/split_billing.lua [scripts/data/orders.csv] [--connect]
-- Under --mock the master team is configured first (split 10 %).
local gigstack = require "gigstack"
local csv = require "gigstack.runner.csv"
local split = require "gigstack.workflows.split_billing"
local client = require "gigstack.client"

local args = { ... }
local path, mode = "scripts/data/orders.csv", "split"
for _, a in ipairs(args) do
  if a == "--connect" then mode = "connect" else path = a end
end
local rows, err = csv.read(path)
if not rows then
  io.stderr:write("split_billing: ", path, ": ", err, "\n")
  os.exit(2)
end

local gs = gigstack.new{ retries = 6 }
if client.defaults.mock then   -- the embedded emulator starts without split settings
  gigstack.check(gs.teams:settings("team_mock", { split_billing = true, split_amount = 10,
    metadata_split_keys = { "vendor_id" } }))
end
local s = split.run(gs, rows, { mode = mode, master = "team_mock", commission = 10 })
for _, line in ipairs(split.format(s)) do print(line) end
print(string.format("failures: %d", #s.failures))
for _, f in ipairs(s.failures) do print("  order " .. f.order .. ": " .. tostring(f.error)) end
