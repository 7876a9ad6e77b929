-- gigstack.async.json: the C encoder writes what the Lua reference
-- encoder writes, and decoding fixes integers and arrays with either cjson.
local json = require "gigstack.async.json"

local function random_value(rng, depth)
  local pick = rng(depth > 3 and 6 or 9)
  if pick == 1 then return rng(-1000, 1000)
  elseif pick == 2 then return (rng(-1000000, 1000000)) / rng(1, 997)
  elseif pick == 3 then
    local chars = {}
    for i = 1, rng(0, 12) do chars[i] = string.char(rng(0, 255)) end
    return table.concat(chars)
  elseif pick == 4 then return rng(2) == 1
  elseif pick == 5 then return json.null
  elseif pick == 6 then return json.raw(string.format("%d.%02d", rng(0, 99999), rng(0, 99)))
  elseif pick == 7 then
    local t = {}
    for i = 1, rng(0, 5) do t[i] = random_value(rng, depth + 1) end
    return rng(2) == 1 and json.array(t) or t
  else
    local t = {}
    for _ = 1, rng(0, 6) do
      local k = rng(4) == 1 and rng(1, 9) or ("k" .. rng(1, 50) .. string.char(rng(32, 126)))
      t[k] = random_value(rng, depth + 1)
    end
    return t
  end
end

describe("json", function()
  it("encodes 5,000 random trees exactly as the Lua reference encoder does", function()
    math.randomseed(20261201)
    local differ = 0
    for _ = 1, 5000 do
      local v = random_value(math.random, 0)
      local c_text, c_err = json.encode(v)
      local lua_text, lua_err = json.encode_lua(v)
      if c_text ~= lua_text or (c_text == nil and c_err ~= lua_err) then
        differ = differ + 1
        print(c_text, c_err, lua_text, lua_err)
      end
    end
    assert.equals(0, differ)
  end)

  it("encodes wide objects as the reference does (keys past the C encoder's stack slots and key buffer)", function()
    -- the C encoder keeps 32 keys on the C stack and the values of 256 on the
    -- Lua stack; wider objects (a saved state's collections) go past both
    for _, width in ipairs{ 31, 32, 33, 255, 256, 257, 1000 } do
      local t = {}
      for i = 1, width do
        if i % 7 == 0 then t[i] = { i, "v" .. i } else t["key" .. i] = { n = i, s = json.raw(i .. ".00") } end
      end
      t.nested = { inner = t.key1, wide = {} }
      for i = 1, width do t.nested.wide["w" .. i] = i % 3 == 0 and json.null or i / 4 end
      assert.equals(json.encode_lua(t), json.encode(t))
    end
  end)

  it("sorts objects of 0 to 40 keys (insertion sort up to 32, qsort past) and escapes anywhere in a string", function()
    -- keys that are prefixes of each other and share long prefixes; each
    -- string clean, or with one byte to escape at its start, middle or end
    math.randomseed(20261202)
    local rng = math.random
    local escapes = { '"', "\\", "\b", "\f", "\n", "\r", "\t", "\0", "\31", "\127" }
    for width = 0, 40 do
      for _ = 1, 25 do
        local t = {}
        for _ = 1, width do
          local k = ("p"):rep(rng(0, 3)) .. string.char(rng(97, 100)):rep(rng(1, 3))
          if rng(5) == 1 then k = rng(1, 12) end
          local v = ("x"):rep(rng(0, 40))
          local where = rng(0, 3)
          if where > 0 then
            local at = where == 1 and 0 or where == 2 and #v // 2 or #v
            v = v:sub(1, at) .. escapes[rng(#escapes)] .. v:sub(at + 1)
          end
          t[k] = v
        end
        assert.equals(json.encode_lua(t), json.encode(t))
      end
    end
  end)

  it("refuses what JSON cannot hold with a message, not a crash", function()
    assert.same({ nil, "cannot encode NaN or infinity as JSON" }, { json.encode({ 0 / 0 }) })
    assert.same({ nil, "cannot encode a function as JSON" }, { json.encode({ f = print }) })
    local deep = {}
    local t = deep
    for _ = 1, 150 do t.x = {}; t = t.x end
    assert.same({ nil, "JSON nesting deeper than 100" }, { json.encode(deep) })
  end)

  it("decodes integral numbers as integers and marks arrays, at any depth", function()
    local v = json.decode('{"a":[1,2.5,{"b":[3.0]}],"n":1e3,"e":[],"o":{}}')
    assert.equals("integer", math.type(v.a[1]))
    assert.equals("float", math.type(v.a[2]))
    assert.equals("integer", math.type(v.a[3].b[1]))
    assert.equals("integer", math.type(v.n))
    assert.is_true(json.is_array(v.a))
    assert.is_true(json.is_array(v.a[3].b))
    assert.equals('{"a":[1,2.5,{"b":[3]}],"e":', json.encode(v):sub(1, 27))
  end)
end)
