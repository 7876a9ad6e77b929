-- The webhook listener in real deployments: bind address, the public URL
-- gigstack calls, one registration per listener across restarts, the
-- secret never printed.
local gigstack = require "gigstack"
local webhooks = require "gigstack.runner.webhooks"
local json = require "gigstack.async.json"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"
local check = gigstack.check

describe("webhook listener registration", function()
  it("updates this listener's registration on every start instead of adding one", function()
    support.with_mock(function(gs)
      -- two stale registrations left by older runs, and someone else's
      check(gs.webhooks:create{ url = "https://hooks.example.mx/hooks/oldsecret1", events = { "payment.succeeded" } })
      check(gs.webhooks:create{ url = "https://hooks.example.mx/hooks/oldsecret2", events = { "payment.succeeded" } })
      local other = check(gs.webhooks:create{ url = "https://erp.example.mx/gigstack", events = { "invoice.created" } })
      local secrets = {}
      for run = 1, 2 do
        local l = webhooks.listen{ port = 0, client = gs, public_url = "https://hooks.example.mx/" }
        assert.equals("https://hooks.example.mx/hooks/" .. l.secret, l.url)
        assert.equals("https://hooks.example.mx/hooks/…", l.display_url)
        assert.matches("^http://127%.0%.0%.1:%d+$", l.local_url)
        local hook, action = check(l.register(gs, { "payment.succeeded" }))
        assert.equals("updated", action, "run " .. run)
        assert.equals(l.url, hook.url)
        secrets[run] = l.secret
        l.close()
      end
      assert.are_not.equal(secrets[1], secrets[2])
      local page = check(gs.webhooks:list{ limit = 100 })
      assert.equals(2, page.total_results)    -- this listener's one, and the other one untouched
      local urls = {}
      for _, w in ipairs(page.data) do urls[w.id] = w.url end
      assert.equals("https://erp.example.mx/gigstack", urls[other.id])
    end)
  end)

  it("creates the registration when none points at this listener", function()
    support.with_mock(function(gs)
      local l = webhooks.listen{ port = 0, client = gs }
      local hook, action = check(l.register(gs, { "payment.succeeded" }))
      l.close()
      assert.equals("created", action)
      assert.equals(l.local_url .. "/hooks/" .. l.secret, hook.url)
    end)
  end)

  it("refuses a public URL that is not http(s)", function()
    local ok, err = pcall(webhooks.listen, { port = 0, client = false, public_url = "hooks.example.mx" })
    assert.is_false(ok)
    assert.matches("public_url must be an http%(s%) URL, got hooks.example.mx", err)
    assert.is_nil(webhooks.listener)
  end)

  it("scripts/ppd_complements.lua --listen HOST:PORT --public-url registers once over restarts, secret unprinted",
    function()
      local state = os.tmpname() .. ".json"
      local outs = {}
      for run = 1, 2 do
        local code, out, err = support.sh("timeout 20 " .. RUN .. " --mock --mock-state " .. state
          .. " --once --log-format json scripts/ppd_complements.lua --listen 127.0.0.1:0"
          .. " --public-url https://hooks.example.mx")
        assert.equals(0, code, err)
        outs[run] = out .. err
      end
      local f = assert(io.open(state))
      local saved = f:read("a")
      f:close()
      os.remove(state)
      assert.matches("listening at http://127%.0%.0%.1:%d+/hooks/… as https://hooks%.example%.mx/hooks/… "
        .. "%(webhook wh_%w+ created", outs[1])
      assert.matches("%(webhook wh_%w+ updated", outs[2])
      for _, text in ipairs(outs) do
        assert.is_nil(text:find("/hooks/%x%x%x%x"), text)    -- no secret on stdout or stderr
      end
      -- the saved sandbox holds exactly one registration
      local n = select(2, saved:gsub('"url":"https://hooks%.example%.mx/hooks/%x+"', ""))
      assert.equals(1, n)
      assert.truthy(json.decode(saved))
    end)
end)
