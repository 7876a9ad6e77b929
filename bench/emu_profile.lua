-- In-process CPU profile of the emulator's POST /v2/payments/register
-- (issue 12): builds the emulator's request handler (mock.new():handle)
-- and calls it N times with the body the wrk bench sends (a fresh
-- idempotency key each time), encoding each answer as the server does.
-- Reports CPU microseconds per call (os.clock: process CPU time, so other
-- work on a shared machine does not count), for ping too, and with
-- --profile a sampling profile (debug.sethook on an instruction count)
-- aggregated by function and by line.
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" \
--     lua5.4 bench/emu_profile.lua [N] [--profile] [--rounds R]
local mock = require "gigstack.mock"
local json = require "gigstack.async.json"

local N, PROFILE, ROUNDS = 2000, false, 7
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--profile" then PROFILE = true
    elseif a == "--rounds" then i = i + 1; ROUNDS = tonumber(arg[i])
    else N = tonumber(a) or N end
    i = i + 1
  end
end

local f = assert(io.open("bench/fixtures/register.json", "rb"))
local template = f:read("a"):gsub("%s+$", "")
f:close()

local HEADERS = { authorization = "Bearer sk_test_mock", ["content-type"] = "application/json",
  host = "127.0.0.1:8080" }

local function register_req(i)
  local key = "prof-" .. i
  return { method = "POST", path = "/v2/payments/register", query = {}, headers = HEADERS,
    body = (template:gsub("@KEY@", key)) }
end

local function ping_req()
  return { method = "GET", path = "/v2/ping", query = {}, headers = HEADERS, body = "" }
end

-- What the server's handler does with one request, minus the socket:
-- the request id, the emulator's answer, its JSON text.
local function serve(emu, req)
  emu.store:id("req")
  local status, body, _, text = emu:handle(req)
  text = text or type(body) == "string" and body or assert(json.encode(body))
  return status, text
end

local function measure(emu, make, n, offset)
  local reqs = {}
  for i = 1, n do reqs[i] = make(offset + i) end   -- built outside the timed loop
  collectgarbage("collect")
  local t0 = os.clock()
  for i = 1, n do
    local status, text = serve(emu, reqs[i])
    if status ~= 200 then error("status " .. status .. ": " .. text) end
  end
  return (os.clock() - t0) / n * 1e6
end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

-- each round on a fresh emulator, so every round's heap is the same size
local emu
local reg, ping = {}, {}
for r = 1, ROUNDS do
  emu = mock.new()
  measure(emu, register_req, 200, 0)   -- warm up (the client is created once)
  reg[r] = measure(emu, register_req, N, N)
  ping[r] = measure(emu, ping_req, N, 0)
end
local rounds = {}
for i, x in ipairs(reg) do rounds[i] = string.format("%.1f", x) end
print(string.format("register: %.1f us/call CPU (median of %d rounds of %d on a fresh emulator; min %.1f; %s)",
  median(reg), ROUNDS, N, math.min(table.unpack(reg)), table.concat(rounds, " ")))
print(string.format("ping:     %.1f us/call CPU", median(ping)))
print(string.format("ratio (CPU ping/register): %.3f", median(ping) / median(reg)))

if PROFILE then
  local by_fn, by_line, total = {}, {}, 0
  local getinfo = debug.getinfo
  local function hook()
    local info = getinfo(2, "Sl")
    if not info then return end
    total = total + 1
    local where = info.short_src .. ":" .. (info.currentline or 0)
    by_line[where] = (by_line[where] or 0) + 1
    local fi = getinfo(2, "Sn")
    local fn = fi.short_src .. ":" .. fi.linedefined .. " " .. tostring(fi.name)
    by_fn[fn] = (by_fn[fn] or 0) + 1
  end
  local reqs = {}
  for i = 1, N do reqs[i] = register_req(10 * N + i) end
  debug.sethook(hook, "", 97)
  for i = 1, N do serve(emu, reqs[i]) end
  debug.sethook()
  local function top(t, k)
    local rows = {}
    for name, n in pairs(t) do rows[#rows + 1] = { name, n } end
    table.sort(rows, function(a, b) return a[2] > b[2] end)
    for i = 1, math.min(k, #rows) do
      print(string.format("  %5.1f%%  %s", 100 * rows[i][2] / total, rows[i][1]))
    end
  end
  print("samples " .. total .. "; by function (self):")
  top(by_fn, 30)
  print("by line:")
  top(by_line, 30)
end
