-- What a release ships: one version everywhere, the --help layout, the
-- man page, warning-free API docs, and the C library as installed (header,
-- static and shared library, gigstack.pc) used by a C program through
-- pkg-config against a --serve-mock emulator.
local support = require "support"
local gigstack = require "gigstack"

local BUILD = support.build_dir()
local RUN = BUILD .. "/gigstack-run"

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function header_version()
  return assert(read("include/gigstack.h"):match('#define GS_VERSION "([^"]+)"'))
end

local function tmpdir()
  local code, out = support.sh("mktemp -d /tmp/gigstack-spec.XXXXXX")
  assert(code == 0, "mktemp failed")
  return (out:gsub("%s+$", ""))
end

describe("version", function()
  it("has one source, GS_VERSION, that every artefact reports", function()
    local v = header_version()
    assert.matches("^%d+%.%d+%.%d+$", v)
    assert.equals(v, gigstack.VERSION)
    local code, out = support.sh(RUN .. " --version")
    assert.equals(0, code)
    assert.equals("gigstack-run " .. v .. " (", out:sub(1, #("gigstack-run " .. v .. " (")))
    local rs = read("rockspec/gigstack-" .. v .. "-1.rockspec")
    assert.matches('\nversion = "' .. v:gsub("%.", "%%.") .. '%-1"', rs)
    assert.matches('tag = "v' .. v:gsub("%.", "%%.") .. '"', rs)
    assert.matches('\nversion = "scm%-1"', read("rockspec/gigstack-scm-1.rockspec"))
    assert.matches("\nVersion: " .. v:gsub("%.", "%%.") .. "\n", read(BUILD .. "/gigstack.pc"))
    assert.matches("\n## %[" .. v:gsub("%.", "%%.") .. "%] %- %d%d%d%d%-%d%d%-%d%d\n", read("CHANGELOG.md"))
  end)

  it("rockspecs declare the license, the dependencies and never run apt-get", function()
    for _, name in ipairs{ "gigstack-" .. header_version() .. "-1", "gigstack-scm-1" } do
      local env = {}
      assert(loadfile("rockspec/" .. name .. ".rockspec", "t", env))()
      assert.equals("MIT", env.description.license)
      assert.same({ "lua >= 5.4", "lua-cjson" }, env.dependencies)
      assert.truthy(env.external_dependencies.CURL and env.external_dependencies.LIBUV
        and env.external_dependencies.SQLITE)
      assert.matches("^git%+https://", env.source.url)
      assert.equals("make suite", env.test.command)
    end
    -- `make suite` (what `luarocks test` runs) must not reach apt-get
    local code, out = support.sh("make -n suite")
    assert.equals(0, code)
    assert.is_nil(out:find("apt-get", 1, true))
    assert.matches("MIT License", read("LICENSE"))
  end)
end)

describe("gigstack-run --help", function()
  local _, help = support.sh(RUN .. " --help")

  it("lists -e, -v and -h with the options, before the exit codes", function()
    local exit_at = assert(help:find("\nExit codes:", 1, true))
    for _, opt in ipairs{ "\n  -e CODE", "\n  -v, --version", "\n  -h, --help" } do
      local at = help:find(opt, 1, true)
      assert.is_truthy(at, opt)
      assert.is_true(at < exit_at, opt .. " after the exit codes")
    end
  end)

  it("aligns every option's description in one column", function()
    -- an option line's text starts after a gap of two or more spaces;
    -- continuation lines are indented to the same column
    local cols = {}
    for line in help:gmatch("[^\n]+") do
      if line:match("^Exit codes:") then break end   -- the options end there
      if line:match("^  %-") then
        local lead = line:match("^(  %-%S.-%S%s%s+)%S")
        if lead then cols[#cols + 1] = #lead .. " " .. line end
      elseif line:match("^%s") then
        cols[#cols + 1] = #line:match("^%s+") .. " " .. line
      end
    end
    assert.is_true(#cols > 20)
    for _, c in ipairs(cols) do
      assert.equals("25", c:match("^(%d+)"), c)
    end
  end)
end)

describe("man/gigstack-run.1", function()
  -- without the sanitizer runtime `make check` preloads: man is not ours
  local code, page, err = support.sh("env -u LD_PRELOAD MANWIDTH=80 man -l man/gigstack-run.1")

  it("renders without warnings", function()
    assert.equals(0, code)
    assert.equals("", err)
    assert.matches("GIGSTACK%-RUN%(1%)", page)
  end)

  it("documents every option of --help and the exit codes", function()
    local _, help = support.sh(RUN .. " --help")
    local n = 0
    for opt in help:gmatch("%f[%S]%-%-?%a[%w%-]*") do
      n = n + 1
      assert.is_truthy(page:find(opt, 1, true), opt .. " missing from the man page")
    end
    assert.is_true(n >= 18)
    local status = assert(page:match("EXIT STATUS\n(.-)\nEXAMPLES"))
    for _, c in ipairs{ "0", "1", "2", "3", "4", "130" } do
      assert.matches("\n%s+" .. c .. "[%s,]", "\n" .. status)
    end
    assert.matches("\n%s+130, 143\n", "\n" .. status)
    assert.matches("All done", status)
    assert.matches("Script error", status)
    assert.matches("Usage or configuration error", status)
    assert.matches("Some items or jobs failed", status)
    assert.matches("held by another run", status)
  end)
end)

describe("make docs", function()
  it("builds the LDoc reference with no warnings", function()
    local code, out, err = support.sh("make -s docs")
    assert.equals(0, code, out .. err)
    assert.equals("API reference in build/docs/index.html\n", out)
    assert.truthy(io.open("build/docs/modules/gigstack.client.html")):close()
  end)
end)

describe("make install", function()
  local root, listing, make_code, make_out

  setup(function()
    root = tmpdir()
    local build = BUILD ~= "build" and (" BUILD=" .. BUILD) or ""
    make_code, make_out = support.sh("make -s install DESTDIR=" .. root .. " PREFIX=/usr/local" .. build)
    local _, out = support.sh("cd " .. root .. " && find . \\( -type f -o -type l \\) | sort")
    listing = out
  end)

  teardown(function()
    if root then os.execute("rm -rf " .. root) end
  end)

  it("installs the runner, Lua modules, core.so, the C library, man page and examples", function()
    assert.equals(0, make_code, make_out)
    for _, f in ipairs{
      "./usr/local/bin/gigstack-run",
      "./usr/local/share/lua/5.4/gigstack/init.lua",
      "./usr/local/share/lua/5.4/gigstack/mock/init.lua",
      "./usr/local/lib/lua/5.4/gigstack/core.so",
      "./usr/local/include/gigstack.h",
      "./usr/local/lib/libgigstack.a",
      "./usr/local/lib/libgigstack.so",
      "./usr/local/lib/libgigstack.so.0",
      "./usr/local/lib/libgigstack.so." .. header_version(),
      "./usr/local/lib/pkgconfig/gigstack.pc",
      "./usr/local/share/man/man1/gigstack-run.1",
      "./usr/local/share/gigstack/examples/auto_invoice.lua",
      "./usr/local/share/gigstack/examples/data/sales.csv",
      "./usr/local/share/gigstack/examples/c/fetch_payment.c",
      "./usr/local/share/doc/gigstack/LICENSE",
    } do
      assert.is_truthy(("\n" .. listing):find("\n" .. f .. "\n", 1, true), f)
    end
    -- every Lua module of the tree, whatever its folder
    local _, src = support.sh("cd lua && find gigstack -name '*.lua' | sort")
    for m in src:gmatch("[^\n]+") do
      assert.is_truthy(listing:find("./usr/local/share/lua/5.4/" .. m, 1, true), m)
    end
    local _, soname = support.sh("readelf -d " .. root .. "/usr/local/lib/libgigstack.so." .. header_version())
    assert.matches("SONAME%)%s+Library soname: %[libgigstack%.so%.0%]", soname)
    local _, link = support.sh("readlink " .. root .. "/usr/local/lib/libgigstack.so.0")
    assert.equals("libgigstack.so." .. header_version() .. "\n", link)
  end)

  it("builds the C example with pkg-config against that tree, which fetches a payment", function()
    assert.equals(0, make_code, make_out)
    local pc = "PKG_CONFIG_PATH=" .. root .. "/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=" .. root
    local code, flags, err = support.sh(pc .. " pkg-config --cflags --libs gigstack")
    assert.equals(0, code, err)
    assert.matches("%-I" .. root:gsub("%p", "%%%0") .. "/usr/local/include", flags)
    assert.matches("%-L" .. root:gsub("%p", "%%%0") .. "/usr/local/lib %-lgigstack", flags)
    local exe = root .. "/fetch_payment"
    -- the installed copy of the example, only the installed header (no -Iinclude)
    local san = BUILD ~= "build" and " -fsanitize=address,undefined" or ""
    local _
    code, _, err = support.sh("cc -Wall -Wextra -Werror" .. san .. " -o " .. exe ..
      " " .. root .. "/usr/local/share/gigstack/examples/c/fetch_payment.c " .. flags:gsub("\n", ""))
    assert.equals(0, code, err)

    local emu = io.popen("sh -c 'echo $$; exec " .. RUN .. " --serve-mock 127.0.0.1:0'")
    local pid = emu:read("l")
    local url = emu:read("l")
    local id, rerr, run_code, out, cerr, nf_code, nf_out, nf_err
    -- the emulator is stopped before any assertion, so a failure cannot leave it running
    local ok, perr = pcall(function()
      gigstack.run(function()
        local gs = gigstack.new{ api_key = "sk_test_mock", base_url = url }
        local p, e = gs.payments:register{
          client = { search = { on_key = "tax_id", on_value = "XAXX010101000", auto_create = true },
            legal_name = "PUBLICO EN GENERAL", tax_id = "XAXX010101000" },
          items = { { description = "Widget", quantity = 2, unit_price = 100.5,
            product_key = "01010101", unit_key = "H87" } },
          payment_form = "03" }
        id, rerr = p and p.id, e
      end, { timeout = 10 })
      if not id then return end
      local env = "LD_LIBRARY_PATH=" .. root .. "/usr/local/lib GIGSTACK_API_KEY=sk_test_mock GIGSTACK_BASE_URL=" .. url
      run_code, out, cerr = support.sh("cd /tmp && " .. env .. " " .. exe .. " " .. id)
      nf_code, nf_out, nf_err = support.sh("cd /tmp && " .. env .. " " .. exe .. " payment_missing")
    end)
    os.execute("kill -TERM " .. pid)
    emu:read("a")
    emu:close()
    assert(ok, perr)
    assert.is_nil(rerr)
    assert.matches("^payment_", id)
    assert.equals(0, run_code, cerr)
    -- 2 x 100.50, no tax on the items: 201.00, as the API's text
    assert.equals("payment " .. id .. ": total 201.00 MXN\n", out)
    assert.equals(1, nf_code)
    assert.equals("", nf_out)
    assert.matches("HTTP 404", nf_err)
    assert.is_nil(nf_err:find("sk_test_mock", 1, true))
    -- the dynamic linker took the installed shared library
    local _, ldd = support.sh("LD_LIBRARY_PATH=" .. root .. "/usr/local/lib ldd " .. exe)
    assert.matches("libgigstack%.so%.0 => " .. root:gsub("%p", "%%%0") .. "/usr/local/lib/libgigstack%.so%.0", ldd)
  end)
end)
