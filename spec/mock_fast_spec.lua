-- The emulator's fast paths (issue 12) answer exactly what the plain
-- code did: ids and uuids per seed, and register's answers.
local store = require "gigstack.mock.store"

-- The LCG id and uuid as first written: a table per call, then string.sub.
local function reference(seed)
  local ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
  local rng = seed
  local function step()
    rng = rng * 6364136223846793005 + 1442695040888963407
    return (rng >> 33) & 0x7fffffff
  end
  local r = {}
  function r.id(prefix, sep)
    local b = {}
    for i = 1, 16 do local v = step() % 62 + 1; b[i] = ALPHABET:sub(v, v) end
    return prefix .. (sep or "_") .. table.concat(b)
  end
  function r.uuid()
    local b = {}
    for i = 1, 33 do b[i] = step() end
    local hex = {}
    for i = 1, 32 do hex[i] = string.format("%X", b[i] % 16) end
    hex[13] = "4"
    hex[17] = string.format("%X", 8 + b[33] % 4)
    local h = table.concat(hex)
    return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
  end
  r.random = step
  return r
end

describe("emulator ids", function()
  it("are the same for the same seed: the default seed's first ids", function()
    local st = store.new()
    assert.equals("payment_Wtq9IHQsK1Hq7pa3", st:id("payment"))
    assert.equals("D10B3850-3C35-498D-B50A-8D6E3E2B605F", st:uuid())
    assert.equals("servicezZndzkAeOslxsdgC", st:id("service", ""))
    assert.equals("payment_6BUs60hzLJ11voKp", st:id("payment"))
  end)

  it("follow the reference LCG over 5,000 mixed draws (ids, uuids, random) from several seeds", function()
    for _, seed in ipairs{ 0x5eed, 1, 42, -7, math.maxinteger } do
      local st, ref = store.new(nil, seed), reference(seed)
      for i = 1, 5000 do
        local k = i % 5
        if k == 0 then assert.equals(ref.uuid(), st:uuid())
        elseif k == 1 then assert.equals(ref.id("evt"), st:id("evt"))
        elseif k == 2 then assert.equals(ref.id("tok", ""), st:id("tok", ""))
        elseif k == 3 then assert.equals(ref.random(), st:random())
        else assert.equals(ref.id("payment"), st:id("payment")) end
      end
      assert.equals(ref.random(), st:random())
    end
  end)

  it("are drawn by core.lcg_chars, which refuses an empty alphabet and texts past its buffer", function()
    local lcg_chars = require("gigstack.core").lcg_chars
    local text, state = lcg_chars(1, 3, "ab", "x", "_")
    assert.equals("x_", text:sub(1, 2))
    assert.equals(5, #text)
    assert.equals("integer", math.type(state))
    assert.equals("", (lcg_chars(7, 0, "ab")))
    assert.has_error(function() lcg_chars(1, 4, "") end)
    assert.has_error(function() lcg_chars(1, 257, "ab") end)
    assert.has_error(function() lcg_chars(1, 4, "ab", ("p"):rep(257)) end)
    assert.equals(256 + 256, #lcg_chars(1, 256, "ab", ("p"):rep(256)))
  end)
end)

describe("emulator transactions", function()
  local json = require "gigstack.async.json"
  local function state(st)
    local snap = st:snapshot()
    return json.encode({ teams = snap.teams, data = snap.data })
  end

  it("a rollback undoes inserts, replacements, removals and folios (a team with counters and one without)", function()
    local st = store.new()
    st:insert("team_mock", "invoices", { id = "inv_a", n = 1 })
    st:insert("team_mock", "invoices", { id = "inv_b", n = 2 })
    assert.equals(1, st:next_folio("team_mock", "GS"))
    local before = state(st)
    st:begin()
    assert.equals(2, st:next_folio("team_mock", "GS"))     -- a series with a counter
    assert.equals(1, st:next_folio("team_mock", "P"))      -- a new series
    assert.equals(3, st:next_folio("team_mock", "GS"))
    assert.equals(1, st:next_folio("team_vendor", "GS"))   -- a team without counters
    st:insert("team_mock", "invoices", { id = "inv_c", n = 3 })
    st:insert("team_mock", "invoices", { id = "inv_a", n = 10 })   -- replaced
    assert.is_true(st:remove("team_mock", "invoices", "inv_b"))
    st:insert("team_vendor", "payments", { id = "pay_x" })
    st:insert("team_mock", "cfdi_errors", { id = "err_1" })  -- durable: stays
    st:rollback()
    local invoices = st:coll("team_mock", "invoices")
    assert.same({}, invoices.gone)   -- the removal's bookkeeping, emptied (as it always was)
    invoices.gone = nil
    st:remove("team_mock", "cfdi_errors", "err_1")
    st:coll("team_mock", "cfdi_errors").gone = nil
    local after = json.decode(state(st))
    after.data.team_mock.cfdi_errors = nil
    local want = json.decode(before)
    want.data.team_vendor = after.data.team_vendor   -- an empty collection is left behind
    assert.same(want, after)
    assert.same({ items = {}, order = {}, pos = {} }, st:coll("team_vendor", "payments"))
    assert.is_nil(st.teams.team_vendor.folios)
    assert.same({ GS = 1 }, st.teams.team_mock.folios)
    -- committed, the same writes stay
    st:begin()
    assert.equals(2, st:next_folio("team_mock", "GS"))
    st:commit()
    assert.same({ GS = 2 }, st.teams.team_mock.folios)
  end)
end)

describe("emulator answers", function()
  local mock = require "gigstack.mock"
  local json = require "gigstack.async.json"
  local HEADERS = { authorization = "Bearer sk_test_mock", host = "127.0.0.1" }
  local function post(emu, path, body)
    return emu:handle{ method = "POST", path = path, query = {}, headers = HEADERS, body = json.encode(body) }
  end
  local client = { search = { on_key = "tax_id", on_value = "RIMJ750405ZGA", auto_create = true },
    name = "JUAN RIVERA", tax_id = "RIMJ750405ZGA", tax_system = "612", address = { zip = "83000" } }

  it("register's text, built around the frozen payment.succeeded, is the encoded answer", function()
    local emu = mock.new()
    local seen = 0
    for i, automation in ipairs{ "pue_invoice", "none", "receipt", "ppd_invoice_and_complement", "pue_invoice" } do
      local status, body, ctype, text = post(emu, "/v2/payments/register", {
        automation_type = automation, payment_form = "03", client = client, idempotency_key = "k" .. i,
        items = { { description = "x", unit_price = 100.5 * i, quantity = i,
          taxes = { { type = "IVA", rate = 0.16 } } } } })
      assert.equals(200, status)
      assert.is_nil(ctype)
      assert.is_string(text)
      assert.equals(json.encode(body), text)
      local events = emu.store:coll("team_mock", "events")
      local last = events.items[events.order[#events.order]]
      assert.equals("payment.succeeded", last.type)
      assert.equals(last.data.object.text, json.encode(body.data))
      seen = seen + 1
    end
    assert.equals(5, seen)
    -- a replay, a request (not paid) and a failure have no text: encoded as before
    local status, _, _, text = post(emu, "/v2/payments/register", { idempotency_key = "k1", client = client,
      items = { { description = "x", unit_price = 1 } } })
    assert.same({ 200, nil }, { status, text })
    status, _, _, text = post(emu, "/v2/payments/request", { client = client, idempotency_key = "r1",
      automation_type = "ppd_invoice_and_complement", items = { { description = "x", unit_price = 10 } } })
    assert.same({ 200, nil }, { status, text })
    status, _, _, text = post(emu, "/v2/payments/register", { client = client, items = {} })
    assert.same({ 400, nil }, { status, text })
  end)
end)

describe("emulator routes", function()
  local mock = require "gigstack.mock"
  local HEADERS = { authorization = "Bearer sk_test_mock", host = "127.0.0.1" }
  local function call(emu, method, path)
    local status, body = emu:handle{ method = method, path = path, query = {}, headers = HEADERS, body = "" }
    return status, body
  end

  it("a literal path's remembered route answers as the search did; others are not remembered", function()
    local emu = mock.new()
    for _ = 1, 3 do
      local status, body = call(emu, "GET", "/v2/ping")
      assert.same({ 200, "GET" }, { status, body.data.method })
      status, body = call(emu, "POST", "/v2/ping")
      assert.same({ 200, "POST" }, { status, body.data.method })
      assert.equals(405, (call(emu, "PATCH", "/v2/ping")))
      assert.is_not.equals(404, (call(emu, "GET", "/v2/invoices/sat")))
      status, body = call(emu, "GET", "/v2/payments/sat")      -- /payments/([^/]+): a capture
      assert.same({ 404, "payment sat not found" }, { status, body.message })
    end
    for i = 1, 50 do call(emu, "GET", "/v2/payments/p" .. i) end
    local n = 0
    for key in pairs(emu.literal_routes) do
      n = n + 1
      assert.is_nil(key:find("/payments/", 1, true))
    end
    assert.is_true(n <= 3)
  end)
end)
