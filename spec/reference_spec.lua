-- docs/reference.md and the SDK agree: a method without a row, or a row
-- without a method, fails.
local gigstack = require "gigstack"

describe("API reference", function()
  it("has a row for every SDK method and a method for every row", function()
    local f = assert(io.open("docs/reference.md"))
    local text = f:read("a")
    f:close()
    local rows = {}
    for endpoint, res, name in text:gmatch("| `(%u+ /v2/[^`]+)` | `gs%.([%w_]+):([%w_]+)` |") do
      assert.is_nil(rows[res .. ":" .. name], "two rows for " .. res .. ":" .. name)
      rows[res .. ":" .. name] = endpoint
    end
    local gs = gigstack.new{ api_key = "sk_test_x", base_url = "http://127.0.0.1:1/v2" }
    local methods = {}
    for res, obj in pairs(gs) do
      if type(obj) == "table" and obj.client == gs then
        for name, fn in pairs(obj) do
          if type(fn) == "function" and name ~= "each" then methods[res .. ":" .. name] = true end
        end
      end
    end
    local n = 0
    for m in pairs(methods) do
      n = n + 1
      assert.is_string(rows[m], "SDK method gs." .. m .. " has no row in docs/reference.md")
    end
    for m, endpoint in pairs(rows) do
      assert.is_true(methods[m], "row " .. endpoint .. " names gs." .. m .. ", which does not exist")
    end
    assert.is_true(n >= 70, "only " .. n .. " methods")
  end)
end)
