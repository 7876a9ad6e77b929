--- Payment complements for PPD invoices. By default a sweep: every
-- succeeded payment naming a PPD invoice (metadata.invoice_id) without a
-- complement gets one. With --listen it stays up and reacts to
-- payment.succeeded webhooks (registered on gigstack for you).
--   gigstack-run scripts/ppd_complements.lua [--listen [HOST:]PORT] [--public-url URL]
--       [--state complements.db]
-- --listen alone listens on 127.0.0.1 and a free port; behind a reverse
-- proxy give the address to bind (0.0.0.0:8080) and the public URL the
-- proxy forwards from (--public-url https://hooks.example.mx, or
-- GIGSTACK_WEBHOOK_URL). The webhook registered on an earlier start is
-- updated, not duplicated; the secret in its URL is never printed.
local gigstack = require "gigstack"
local ppd = require "gigstack.workflows.ppd_complements"

local args = { ... }
local listen, journal_path, public_url = false, nil, nil
local i = 1
local function usage(msg)
  io.stderr:write("ppd_complements: ", msg, "\n")
  os.exit(2)
end
while args[i] do
  if args[i] == "--listen" then
    listen = {}
    local where = args[i + 1]
    local host, port = (where or ""):match("^%[?([%w%.:%-]-)%]?:(%d+)$")
    if not host then host, port = "", (where or ""):match("^(%d+)$") end
    if port then
      port = tonumber(port)
      if port > 65535 then usage("--listen: bad port in " .. where) end
      listen = { host = host ~= "" and host or nil, port = port }
      i = i + 1
    end
    i = i + 1
  elseif args[i] == "--public-url" then
    public_url = args[i + 1]
    if not public_url or not public_url:match("^https?://") then usage("--public-url needs an http(s) URL") end
    i = i + 2
  elseif args[i] == "--state" then journal_path = args[i + 1]; i = i + 2
  else io.stderr:write("ppd_complements: unknown argument ", args[i], "\n"); os.exit(2) end
end

local gs = gigstack.new{}
local issued, failures = ppd.sweep(gs)
print(string.format("complements issued: %d, failures: %d", issued, #failures))
for _, f in ipairs(failures) do print("  payment " .. f.payment .. ": " .. tostring(f.error)) end
if listen then
  local journal = journal_path and require("gigstack.runner.journal").open(journal_path)
  local hooks = gigstack.on("payment.succeeded", function(ev)
    -- raises on a failure worth retrying: the listener answers 500 and
    -- gigstack delivers the event again
    local rep, why = ppd.for_event(gs, ev)
    if rep then print("complement " .. rep.uuid .. " for payment " .. tostring(ev.data.object.id))
    else print("no complement for payment " .. tostring(ev.data.object.id) .. ": " .. why) end
  end, { journal = journal, client = gs, host = listen.host, port = listen.port, public_url = public_url })
  local hook, action = gigstack.check(hooks.register(gs, { "payment.succeeded" }))
  print(string.format("listening at %s/hooks/… as %s (webhook %s %s; Ctrl-C stops)", hooks.local_url,
    hooks.display_url, hook.id, action))
end
