-- wrk script of `make bench`: POST /v2/payments/register to the emulator,
-- the body of bench/fixtures/register.json with a fresh idempotency key
-- (and metadata.sale_id) per request, so no answer is a replay. wrk counts
-- answers other than 2xx/3xx itself ("Non-2xx or 3xx responses").
--   wrk -t1 -c64 -d3s -s bench/wrk/register.lua http://HOST:PORT -- BODY_FILE
-- wrk runs this in its own LuaJIT with these globals as its hooks.
-- luacheck: std lua51, globals wrk init request
local head, tail
local counter = 0

function init(args)
  local f = assert(io.open(args[1] or "bench/fixtures/register.json", "rb"))
  local body = f:read("*a"):gsub("%s+$", "")
  f:close()
  local a, b = body:find("@KEY@", 1, true)
  assert(a, "register body has no @KEY@ placeholder")
  head, tail = body:sub(1, a - 1), body:sub(b + 1)
  wrk.method = "POST"
  wrk.path = "/v2/payments/register"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer sk_test_mock"
end

function request()
  counter = counter + 1
  local key = "wrk-" .. tostring(counter) .. "-" .. tostring(math.random(1, 1e9))
  -- both placeholders: the idempotency key and metadata.sale_id
  return wrk.format(nil, nil, nil, head .. key .. tail:gsub("@KEY@", key))
end
