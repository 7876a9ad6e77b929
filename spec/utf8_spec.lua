--- core.utf8_valid: the C check every response body passes before it is
-- decoded gives the verdict of Lua's strict utf8.len, byte for byte.
local core = require "gigstack.core"

local function lua_verdict(s) return utf8.len(s) ~= nil end

describe("core.utf8_valid", function()
  it("agrees with utf8.len on the edges of every sequence length", function()
    local cases = {
      "", "plain ascii", "\0", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
      "\xC0\x80", "\xC1\xBF", "\xC2\x80", "\xDF\xBF",                    -- overlong 2-byte, then the first valid
      "\xE0\x80\x80", "\xE0\x9F\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",    -- overlong 3-byte, limits
      "\xED\xA0\x80", "\xED\xBF\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",    -- surrogates, then valid
      "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF0\x90\x80\x80",        -- overlong 4-byte
      "\xF4\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",        -- U+10FFFF, past it
      "\xF8\x88\x80\x80\x80", "\xFC\x84\x80\x80\x80\x80", "\xFE", "\xFF", -- 5 and 6 bytes, never valid
      "\x80", "\xBF", "\xC3", "\xE2\x82", "\xF0\x9F\x98",                -- lone continuation, truncated
      "abcdefg\xC3", "abcdefgh\xC3\xA9ijklmnop", "\xC3\xA9abcdefgh\xFF",  -- around the 8-byte fast path
    }
    for _, s in ipairs(cases) do
      assert.are.equal(lua_verdict(s), core.utf8_valid(s), string.format("%q", s))
    end
  end)

  it("agrees with utf8.len on 20,000 random strings biased towards multi-byte edges", function()
    local seed = 12345
    local function rnd(n)   -- a small LCG: the same strings on every run
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local pool = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
      0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFC, 0xFE, 0xFF }
    local valid, invalid = 0, 0
    for _ = 1, 20000 do
      local bytes = {}
      for i = 1, rnd(16) do
        bytes[i] = rnd(2) == 0 and (0x20 + rnd(90)) or pool[rnd(#pool) + 1]
      end
      local s = string.char(table.unpack(bytes))
      local want = lua_verdict(s)
      if want then valid = valid + 1 else invalid = invalid + 1 end
      assert.are.equal(want, core.utf8_valid(s), string.format("%q", s))
    end
    assert.is_true(valid > 500 and invalid > 500, valid .. " valid, " .. invalid .. " invalid")
  end)

  it("makes the client refuse a response body that is not UTF-8", function()
    local client = require "gigstack.client"
    local env, err = client.response({ status = 200, body = '{"data":"\xC3"}', headers = {} }, nil, "GET", "/x")
    assert.is_nil(env)
    assert.are.equal("decode", err.kind)
    assert.matches("not valid UTF%-8", err.message)
  end)
end)
