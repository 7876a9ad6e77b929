--- JWT-shaped test keys for the emulator. Live gigstack keys are JWTs
-- whose payload carries `team`, `livemode` and `key_id` (reference
-- §2.2); the emulator accepts test keys of that shape, unsigned (alg
-- "none", empty signature) or HS256 with M.TEST_SECRET, and refuses
-- livemode = true. SHA-256 and HMAC in plain Lua (FIPS 180-4, RFC 2104).
local json = require "gigstack.async.json"

local M = {}

M.TEST_SECRET = "gigstack-mock-test-secret"

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local MASK = 0xffffffff

local function rotr(x, n) return ((x >> n) | (x << (32 - n))) & MASK end

--- SHA-256 digest of s (32 raw bytes).
function M.sha256(s)
  local len = #s
  s = s .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
  local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local w = {}
  for chunk = 1, #s, 64 do
    for i = 0, 15 do w[i] = string.unpack(">I4", s, chunk + i * 4) end
    for i = 16, 63 do
      local s0 = rotr(w[i - 15], 7) ~ rotr(w[i - 15], 18) ~ (w[i - 15] >> 3)
      local s1 = rotr(w[i - 2], 17) ~ rotr(w[i - 2], 19) ~ (w[i - 2] >> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & MASK
    end
    local a, b, c, d, e, f, g, hh = table.unpack(h)
    for i = 0, 63 do
      local t1 = (hh + (rotr(e, 6) ~ rotr(e, 11) ~ rotr(e, 25)) + ((e & f) ~ (~e & g)) + K[i + 1] + w[i]) & MASK
      local t2 = ((rotr(a, 2) ~ rotr(a, 13) ~ rotr(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))) & MASK
      hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & MASK, c, b, a, (t1 + t2) & MASK
    end
    local add = { a, b, c, d, e, f, g, hh }
    for i = 1, 8 do h[i] = (h[i] + add[i]) & MASK end
  end
  return string.pack(">I4I4I4I4I4I4I4I4", table.unpack(h))
end

function M.hmac_sha256(key, msg)
  if #key > 64 then key = M.sha256(key) end
  key = key .. string.rep("\0", 64 - #key)
  local ipad = key:gsub(".", function(ch) return string.char(ch:byte() ~ 0x36) end)
  local opad = key:gsub(".", function(ch) return string.char(ch:byte() ~ 0x5c) end)
  return M.sha256(opad .. M.sha256(ipad .. msg))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

--- base64url without padding (also reads + / and padding).
function M.b64url_decode(s)
  s = s:gsub("%+", "-"):gsub("/", "_"):gsub("=+$", "")
  if s:find("[^%w%-_]") or #s % 4 == 1 then return nil end
  local out, bits, n = {}, 0, 0
  for i = 1, #s do
    bits = (bits << 6) | (B64:find(s:sub(i, i), 1, true) - 1)
    n = n + 6
    if n >= 8 then
      n = n - 8
      out[#out + 1] = string.char((bits >> n) & 0xff)
    end
  end
  return table.concat(out)
end

function M.b64url_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = (a << 16) | ((b or 0) << 8) | (c or 0)
    local n = b and (c and 4 or 3) or 2
    for j = 1, n do
      local k = (v >> (18 - 6 * (j - 1))) & 63
      out[#out + 1] = B64:sub(k + 1, k + 1)
    end
  end
  return table.concat(out)
end

--- Is `key` JWT-shaped (three dot-separated base64url parts)?
function M.shaped(key)
  return key:match("^[%w%-_]+%.[%w%-_]+%.[%w%-_]*$") ~= nil
end

--- The claims of a test key, or nil and why it is refused.
function M.verify(key)
  local h64, p64, sig = key:match("^([%w%-_]+)%.([%w%-_]+)%.([%w%-_]*)$")
  if not h64 then return nil, "not a JWT" end
  local header = json.decode(M.b64url_decode(h64) or "")
  local claims = json.decode(M.b64url_decode(p64) or "")
  if type(header) ~= "table" or type(claims) ~= "table" then return nil, "JWT header or payload is not JSON" end
  if header.alg == "none" then
    if sig ~= "" then return nil, "an unsigned JWT (alg none) has an empty signature" end
  elseif header.alg == "HS256" then
    if M.b64url_encode(M.hmac_sha256(M.TEST_SECRET, h64 .. "." .. p64)) ~= sig then
      return nil, "JWT signature does not verify (HS256 with the emulator's test secret)"
    end
  else
    return nil, "JWT alg must be none or HS256"
  end
  if claims.livemode == true then return nil, "livemode keys are not accepted by the emulator (test keys only)" end
  if type(claims.team) ~= "string" then return nil, "the JWT has no team claim" end
  return claims
end

return M
