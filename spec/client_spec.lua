-- The SDK against the emulator: errors as values, pagination, teams.
local gigstack = require "gigstack"
local paginate = require "gigstack.paginate"
local json = require "gigstack.async.json"
local support = require "support"

local function new_client(gs, i)
  return gigstack.check(gs.clients:create{
    name = "Cliente " .. i, tax_id = string.format("XAXA8001%02dAB%d", (i % 28) + 1, i % 10),
    tax_system = "612", address = { zip = "06600" }, email = "c" .. i .. "@ejemplo.mx",
  })
end

describe("client", function()
  it("returns 401 as an error value with status, code and message, never the key", function()
    support.with_mock(function(_, server)
      local bad = gigstack.new{ api_key = "sk_test_wrong_secret_123", base_url = server.base_url }
      local page, err = bad.clients:list()
      assert.is_nil(page)
      assert.is_true(gigstack.is_error(err))
      assert.equals("auth", err.kind)
      assert.equals(401, err.status)
      assert.equals("unauthorized", err.code)
      assert.equals("invalid API key", err.message)
      assert.is_string(err.request_id)
      assert.is_nil(tostring(err):find("sk_test_wrong_secret_123", 1, true))
      assert.is_nil(tostring(bad):find("sk_test_wrong_secret_123", 1, true))
      for _, v in pairs(bad) do
        assert.is_nil(tostring(v):find("sk_test_wrong_secret_123", 1, true))
      end
    end)
  end)

  it("returns 404 as an error value", function()
    support.with_mock(function(gs)
      local c, err = gs.clients:get("client_missing")
      assert.is_nil(c)
      assert.equals("not_found", err.kind)
      assert.equals(404, err.status)
      assert.matches("client client_missing not found", err.message)
    end)
  end)

  it("the emulator names every invalid field in a validation error", function()
    support.with_mock(function(gs)
      local _, err = gs.clients:create{ tax_id = "NOT-AN-RFC", email = "nope", address = { zip = "12" } }
      assert.equals("validation", err.kind)
      assert.equals(400, err.status)
      local fields = {}
      for _, d in ipairs(err.details) do fields[d.field] = d.message end
      assert.is_string(fields.name)
      assert.matches("RFC must have 12", fields.tax_id)
      assert.matches("email", fields.email)
      assert.matches("5%-digit", fields["address.zip"])
    end, { validate = false })
  end)

  it("walks every record exactly once across pages", function()
    support.with_mock(function(gs)
      local created = {}
      for i = 1, 57 do created[new_client(gs, i).id] = true end
      local seen, count = {}, 0
      for c in gs.clients:each{ limit = 10 } do
        assert.is_nil(seen[c.id], "seen twice: " .. c.id)
        assert.is_true(created[c.id])
        seen[c.id] = true
        count = count + 1
      end
      assert.equals(57, count)
      local first = gigstack.check(gs.clients:list{ limit = 10 })
      assert.equals(57, first.total_results)
      assert.is_true(first.has_more)
      local n = 0
      for _ in gs.clients:each{ limit = 7 } do
        n = n + 1
        if n == 3 then break end
      end
      assert.equals(3, n)
    end, { concurrency = 4 })
  end)

  it("rejects a page size outside 1..100", function()
    support.with_mock(function(gs)
      local _, err = gs.clients:list{ limit = 101 }
      assert.equals(400, err.status)
      assert.matches("limit", err.message)
    end)
  end)

  it("acts on a connected team with the team parameter and refuses other billing accounts", function()
    support.with_mock(function(gs)
      gigstack.check(gs.clients:create({ name = "Vendor client", tax_id = "VECL800101AB1" },
        { team = "team_vendor" }))
      assert.equals(1, gigstack.check(gs.clients:list{ team = "team_vendor" }).total_results)
      assert.equals(0, gigstack.check(gs.clients:list()).total_results)
      local _, err = gs.clients:list{ team = "team_other" }
      assert.equals(403, err.status)
      local scoped = gigstack.new{ api_key = "sk_test_mock", base_url = gs.base_url, team = "team_vendor" }
      assert.equals(1, gigstack.check(scoped.clients:list()).total_results)
    end)
  end)

  it("reads both envelope generations and skips null entries", function()
    local newer = paginate.page{ data = { { id = "a" }, json.null, { id = "b" } },
      has_more = true, next = "b", total_results = 3 }
    assert.same({ 2, true, "b", 3 }, { #newer.data, newer.has_more, newer.next, newer.total_results })
    local older = paginate.page{ data = { { id = "c" } }, hasMore = false, next = json.null, totalResults = 1 }
    assert.same({ 1, false, nil, 1 }, { #older.data, older.has_more, older.next, older.total_results })
  end)

  it("requires an API key and takes it from GIGSTACK_API_KEY", function()
    local ok, err = pcall(gigstack.new, { base_url = "http://127.0.0.1:1/v2" })
    if os.getenv("GIGSTACK_API_KEY") then
      assert.is_true(ok)
    else
      assert.is_false(ok)
      assert.matches("api_key is required", err)
    end
  end)

  it("decodes integers as integers and encodes empty arrays as []", function()
    local v = json.decode('{"n":1160,"x":0.5,"list":[1,2]}')
    assert.equals("integer", math.type(v.n))
    assert.equals(0.5, v.x)
    assert.equals('{"a":[],"b":{},"m":1160.50}',
      json.encode{ a = json.array(), b = {}, m = json.raw("1160.50") })
  end)
end)

describe("secrets", function()
  it("never prints the API key: errors of every kind, tostring, runner output", function()
    local secret = "sk_live_super_secret_987"
    support.with_mock(function(_, server)
      local gs = gigstack.new{ api_key = secret, base_url = server.base_url, retries = 0 }
      local seen = {}
      local function scan(v, depth)
        if depth > 6 then return end
        if type(v) == "table" then
          for k, x in pairs(v) do scan(k, depth + 1); scan(x, depth + 1) end
        elseif type(v) == "string" then
          seen[#seen + 1] = v
        end
      end
      local _, e401 = gs.clients:list()
      local dead = gigstack.new{ api_key = secret, base_url = "http://127.0.0.1:1/v2", retries = 0 }
      local _, enet = dead.clients:list()
      local _, evalid = gs.clients:create{ tax_id = "bad" }
      for _, e in ipairs{ e401, enet, evalid } do
        seen[#seen + 1] = tostring(e)
        scan(e, 0)
      end
      seen[#seen + 1] = tostring(gs)
      scan(gs, 0)
      for _, text in ipairs(seen) do
        assert.is_nil(text:find(secret, 1, true), "key leaked in: " .. text)
      end
    end)
    local code, out, err = support.sh("GIGSTACK_API_KEY=" .. secret .. " GIGSTACK_BASE_URL=http://127.0.0.1:1/v2 ./"
      .. support.build_dir() .. "/gigstack-run -e 'local g = require \"gigstack\".new{retries = 0}; "
      .. "print(g); error(select(2, g.clients:list()))'")
    assert.equals(1, code)
    assert.matches("connect", err)
    assert.is_nil((out .. err):find(secret, 1, true))
  end)
end)
