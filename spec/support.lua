--- Test support: run a body against a fresh emulator on port 0.
local gigstack = require "gigstack"
local mock = require "gigstack.mock"

local M = {}

M.WATCHDOG = 30   -- seconds; every loop in the suite runs under it

--- with_mock(function(gs, server) ... end, opts) inside gigstack.run.
function M.with_mock(body, opts)
  opts = opts or {}
  return gigstack.run(function()
    local server = assert(mock.start(opts))   -- opts may carry faults, retry_after, stall
    local gs = gigstack.new{ api_key = server.api_key, base_url = server.base_url,
      concurrency = opts.concurrency, timeout = opts.timeout,
      validate = opts.validate }
    local ok, err = pcall(body, gs, server)
    server.close()
    if not ok then error(err, 0) end
  end, { timeout = opts.watchdog or M.WATCHDOG })
end

function M.build_dir()
  return os.getenv("GIGSTACK_BUILD") or "build"
end

--- A fresh temporary path (the file itself not created).
function M.tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p
end

--- Write text to path (replacing it); returns path.
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- A file's bytes, or "" when it does not exist.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- A script for `gigstack-run SCRIPT JOURNAL LOG KEY`: claims KEY in the
-- journal and, if it runs the work, appends KEY to LOG and holds the
-- claim 300 ms (far longer than two processes' start skew).
M.ONCE_SCRIPT = [[
local gigstack = require "gigstack"
local j = require("gigstack.runner.journal").open(arg[1])
gigstack.run(function()
  assert(j:once(arg[3], function()
    local out = assert(io.open(arg[2], "a"))
    out:write(arg[3], "\n")
    out:close()
    gigstack.sleep(0.3)
    return true
  end))
end)
j:close()
]]

--- Run a shell command; returns exit code, stdout, stderr.
function M.sh(cmd)
  local errf = os.tmpname()
  local p = io.popen(cmd .. " 2>" .. errf)
  local out = p:read("a")
  local _, _, code = p:close()
  local f = io.open(errf)
  local err = f:read("a")
  f:close()
  os.remove(errf)
  return code, out, err
end

return M
