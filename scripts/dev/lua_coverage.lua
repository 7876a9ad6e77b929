--- Line coverage of the Lua tree without luacov (Debian 12 does not
-- package it). Collect: run this file first in a Lua state (the spec
-- helper and gigstack-run do when GIGSTACK_LUA_COVERAGE names a
-- directory); every coroutine gets a line hook, and the counts are
-- written to DIR/<unique>.cov when the state closes. Report:
--   lua5.4 scripts/dev/lua_coverage.lua report DIR [lua]
-- compares the lines hit with the lines that hold bytecode (luac -l -l)
-- and prints per-file and total percentages.
local arg = arg

if arg and arg[1] == "report" then
  local dir, tree = arg[2], arg[3] or "lua"
  local hits = {}
  local p = assert(io.popen("ls " .. dir .. "/*.cov 2>/dev/null"))
  for path in p:lines() do
    for rec in io.lines(path) do
      local file, line = rec:match("^(.*):(%d+)$")
      if file then
        hits[file] = hits[file] or {}
        hits[file][tonumber(line)] = true
      end
    end
  end
  p:close()
  local files = {}
  local q = assert(io.popen("find " .. tree .. " -name '*.lua' | sort"))
  for f in q:lines() do files[#files + 1] = f end
  q:close()
  local total, covered = 0, 0
  local rows = {}
  for _, f in ipairs(files) do
    local lines = {}
    local l = assert(io.popen("luac5.4 -l -l -p " .. f))
    for n in l:read("a"):gmatch("\t%[(%d+)%]\t") do lines[tonumber(n)] = true end
    l:close()
    -- a hit is recorded under the chunk name, which ends with the path
    local h = {}
    for name, set in pairs(hits) do
      if name:sub(-#f) == f then for n in pairs(set) do h[n] = true end end
    end
    local t, c = 0, 0
    for n in pairs(lines) do
      t = t + 1
      if h[n] then c = c + 1 end
    end
    total, covered = total + t, covered + c
    rows[#rows + 1] = string.format("%6.1f%%  %5d/%-5d %s", t > 0 and 100 * c / t or 100, c, t, f)
  end
  print(table.concat(rows, "\n"))
  print(string.format("Lua lines: %.1f%% (%d of %d lines with bytecode)", 100 * covered / math.max(total, 1),
    covered, total))
  return
end

local dir = os.getenv("GIGSTACK_LUA_COVERAGE")
if not dir or dir == "" then return end
local counts = {}
local getinfo = debug.getinfo
local function hook(_, line)
  local src = getinfo(2, "S").source
  local set = counts[src]
  if not set then set = {}; counts[src] = set end
  set[line] = true
end
debug.sethook(hook, "l")
local create = coroutine.create
coroutine.create = function(f)   -- luacheck: ignore (a dev tool patches the library on purpose)
  local co = create(f)
  debug.sethook(co, hook, "l")
  return co
end
coroutine.wrap = function(f)     -- luacheck: ignore
  local co = create(f)
  debug.sethook(co, hook, "l")
  return function(...)
    local r = table.pack(coroutine.resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end
local function flush()
  local name = dir .. "/" .. os.tmpname():match("[^/]+$") .. ".cov"
  local f = io.open(name, "w")
  if not f then return end
  for src, set in pairs(counts) do
    if src:sub(1, 1) == "@" then
      for line in pairs(set) do f:write(src:sub(2), ":", line, "\n") end
    end
  end
  f:close()
end
-- written when the state closes (lua_close runs __gc), and on os.exit
package.loaded["gigstack coverage sentinel"] = setmetatable({}, { __gc = flush })
local exit = os.exit
os.exit = function(code, close)  -- luacheck: ignore
  flush()
  package.loaded["gigstack coverage sentinel"] = nil
  return exit(code, close)
end
