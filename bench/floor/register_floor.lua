--- Floor of `make bench`'s emulator pair (issue 12): the emulator's own
-- server, request ids, fault hook, routing and ping, with a register that
-- does no business at all: it decodes the body with cjson and answers one
-- fixed payment (the answer of a real register, taken once at start),
-- encoded by the emulator's encoder on every request. The ratio of this
-- register to ping is the best an emulator on this server and encoder can
-- reach; the real register also checks the body, resolves the client,
-- computes taxes, stores the payment, issues its invoice and records
-- three events.
--   gigstack-run bench/floor/register_floor.lua BODY_FILE
-- Prints the base URL, then serves until SIGINT/SIGTERM.
local mock = require "gigstack.mock"
local runner = require "gigstack.runner"
local cjson = require "cjson"

local body_file = assert(arg and arg[1], "usage: register_floor.lua BODY_FILE")
local f = assert(io.open(body_file, "rb"))
local template = f:read("a"):gsub("%s+$", "")
f:close()

runner.serve_gc()   -- as --serve-mock runs
local emu = mock.new{ examples = true }
local real_handle = emu.handle
local headers = { authorization = "Bearer " .. mock.DEFAULT_KEY, ["content-type"] = "application/json" }
local status, answer = real_handle(emu, { method = "POST", path = "/v2/payments/register", query = {},
  headers = headers, body = (template:gsub("@KEY@", "floor-first")) })
assert(status == 200 and type(answer) == "table", "the first register failed: " .. tostring(status))

function emu.handle(self, req)
  if req.method == "POST" and req.path == "/v2/payments/register" then
    local sale = cjson.decode(req.body)
    answer.data.metadata = sale.metadata
    return 200, answer
  end
  return real_handle(self, req)
end

local server = assert(mock.start{ emulator = emu, port = 0 })
io.stdout:write(server.base_url, "\n")
io.stdout:flush()
runner.until_stopped()
server.close()
