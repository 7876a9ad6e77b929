-- Every code block of README.md runs as written. Lua blocks: as a script
-- under `gigstack-run --mock --once` in an empty directory. Shell blocks:
-- with sh -e from the source tree. A block marked `<!-- output -->`
-- right after one is compared with its stdout ("…" stands for any text
-- on a line, a line of "…" alone for any lines, runs of blanks for runs
-- of blanks or tabs); `<!-- output of: CMD -->` runs CMD for it. A block
-- that cannot run carries `<!-- not run: reason -->`; any other block
-- fails this spec.
local support = require "support"

local BUILD = support.build_dir()
local ROOT = io.popen("pwd"):read("l")
local RUN = ROOT .. "/" .. BUILD .. "/gigstack-run"

--- The README's fenced blocks: {line, lang, text, marker}; marker is the
-- HTML comment on the line just above the fence, if any.
local function blocks(path)
  local out, cur, prev = {}, nil, nil
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local lang = line:match("^```(%S*)%s*$")
      if lang then
        cur = { line = n, lang = lang, lines = {}, marker = prev and prev:match("^<!%-%-%s*(.-)%s*%-%->$") }
      end
    end
    if not cur then prev = line end
  end
  assert(not cur, "README.md: a fence opened at line " .. (cur and cur.line or 0) .. " is never closed")
  for _, b in ipairs(out) do b.text = table.concat(b.lines, "\n") .. "\n" end
  return out
end

-- expected output -> a Lua pattern for the whole stdout
local function pattern(expected)
  local parts = {}
  for line in expected:gmatch("[^\n]+") do
    if line == "…" then
      parts[#parts + 1] = ".-"
    else
      local p = {}
      for piece in (line .. "…"):gmatch("(.-)…") do
        p[#p + 1] = piece:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("%s+", "[ \t]+")
      end
      parts[#parts + 1] = table.concat(p, "[^\n]-")
    end
  end
  return "^" .. table.concat(parts, "\n") .. "\n$"
end

local function run_sh(text)
  -- the README says build/gigstack-run; under `make check` the binary is elsewhere
  text = text:gsub("build/gigstack%-run", BUILD .. "/gigstack-run")
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write("set -e\n", text)
  f:close()
  local code, out, err = support.sh("cd " .. ROOT .. " && timeout 120 sh " .. file)
  os.remove(file)
  return code, out, err
end

local function run_lua(text)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local f = assert(io.open(dir .. "/block.lua", "w"))
  f:write(text)
  f:close()
  local code, out, err = support.sh("cd " .. dir .. " && env -u GIGSTACK_API_KEY timeout 120 " .. RUN
    .. " --mock --once --log-format text block.lua")
  os.execute("rm -rf " .. dir)
  return code, out, err
end

describe("README.md", function()
  local all = blocks("README.md")

  it("has code blocks, each one run, an output, or marked `not run` with a reason", function()
    assert.is_true(#all >= 15)
    for _, b in ipairs(all) do
      local m = b.marker or ""
      local runnable = b.lang == "lua" or b.lang == "sh"
      local ok = runnable or m == "output" or m:match("^output of: .+") or m:match("^not run: %S.+")
      assert.truthy(ok, "README.md line " .. b.line .. ": a ```" .. b.lang
        .. " block that is neither run nor marked <!-- not run: reason -->")
    end
  end)

  for i, b in ipairs(all) do
    local m = b.marker or ""
    local nxt = all[i + 1]
    local expected = nxt and nxt.marker == "output" and nxt.text
    if (b.lang == "lua" or b.lang == "sh") and not m:match("^not run:") then
      it("line " .. b.line .. ": the " .. b.lang .. " block runs" .. (expected and " and prints what follows it" or ""),
        function()
          local code, out, err
          if b.lang == "lua" then code, out, err = run_lua(b.text) else code, out, err = run_sh(b.text) end
          assert.equals(0, code, "exit " .. tostring(code) .. "\nstdout:\n" .. out .. "\nstderr:\n" .. err)
          if expected then
            assert.truthy(out:match(pattern(expected)), "stdout:\n" .. out .. "\nexpected:\n" .. expected)
          end
        end)
    elseif m:match("^output of: ") then
      it("line " .. b.line .. ": shows what `" .. m:match("^output of: (.*)") .. "` prints", function()
        local code, out, err = run_sh(m:match("^output of: (.*)"):gsub(";", "\n") .. "\n")
        assert.equals(0, code, err)
        assert.truthy(out:match(pattern(b.text)), "stdout:\n" .. out .. "\nexpected:\n" .. b.text)
      end)
    end
  end

  it("the output pattern is strict where the README shows figures", function()
    local p = pattern("payment_… 1740 …\n")
    assert.truthy(("payment_x1\t1740\tUUID\n"):match(p))
    assert.falsy(("payment_x1\t1741\tUUID\n"):match(p))
    assert.falsy(("payment_x1\t1740\tUUID\nmore\n"):match(p))
    assert.truthy(("a\nb\nc\nd\n"):match(pattern("a\n…\nd\n")))
  end)
end)
