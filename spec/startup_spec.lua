--- Start-up (issue 12): libcurl, libpq and libcrypto are opened on first
-- use, so a run that needs none of them does not pay for loading them.
local support = require "support"

local RUN = support.build_dir() .. "/gigstack-run"

-- prints which of the three libraries the process has mapped
local MAPPED = [[local m = io.open("/proc/self/maps"):read("a")
  local seen = {}
  for _, name in ipairs{ "libcurl", "libpq", "libcrypto" } do
    if m:find(name, 1, true) then seen[#seen + 1] = name end
  end
  print("mapped: " .. table.concat(seen, ","))]]

local function run(args)
  return support.sh("env -u LD_PRELOAD " .. RUN .. " " .. args)
end

describe("gigstack-run start-up", function()
  it("maps neither libcurl nor libpq nor libcrypto for a script that makes no request", function()
    local code, out, err = run("-e " .. string.format("%q", MAPPED))
    assert.are.equal(0, code, err)
    assert.are.equal("mapped: \n", out)
  end)

  it("opens libcurl with the first request, and the request succeeds", function()
    local script = support.tmpfile()
    local f = assert(io.open(script, "w"))
    f:write([[local gigstack = require "gigstack"
      local gs = gigstack.new()
      assert(gs.ping:get())
      ]], MAPPED, "\n")
    f:close()
    local code, out, err = run("--mock " .. script)
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("mapped: libcurl", 1, true), out)
  end)

  it("opens libcrypto with the first seal or base64 call", function()
    local code, out, err = run("-e " .. string.format("%q",
      [[assert(require("gigstack.core").base64_encode("gigstack") == "Z2lnc3RhY2s=") ]] .. MAPPED))
    assert.are.equal(0, code, err)
    assert.are.equal("mapped: libcrypto\n", out)
  end)

  it("reports libcurl's version in --version, loading it", function()
    local code, out, err = run("--version")
    assert.are.equal(0, code, err)
    assert.truthy(out:match("libcurl %d+%.%d+%.%d+"), out)
  end)
end)
