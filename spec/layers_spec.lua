-- The Lua tree is grouped by layer, and each layer requires only layers
-- below it: no upward edge, no cycle (in the emulator either).
local LAYERS = {                      -- module name prefix -> rank
  { "gigstack.core", 0 },             -- the C binding
  { "gigstack.async.", 1 },           -- coroutines over core: sched, http, json, errors
  { "gigstack.fiscal.", 2 },          -- SAT rules, no I/O
  { "gigstack.client", 3 }, { "gigstack.resources", 3 }, { "gigstack.paginate", 3 },  -- the SDK
  { "gigstack.mock.", 4 }, { "gigstack.mock", 4 },    -- the emulator
  { "gigstack.runner.", 5 }, { "gigstack.runner", 5 }, -- gigstack-run: schedules, journal, logs
  { "gigstack.workflows.", 7 },
  { "gigstack", 6 },                  -- the facade users require: SDK + every/on
}

local function rank(name)
  for _, l in ipairs(LAYERS) do
    local prefix = l[1]
    if name == prefix or (prefix:sub(-1) == "." and name:sub(1, #prefix) == prefix) then
      return l[2]
    end
  end
end

local function module_name(path)   -- lua/gigstack/a/b.lua -> gigstack.a.b
  return (path:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", "."))
end

local function modules()
  local out = {}
  local p = io.popen("find lua/gigstack -name '*.lua' | sort")
  for path in p:lines() do
    local f = assert(io.open(path))
    -- comments dropped: an example in a doc comment is not a require
    out[module_name(path)] = f:read("a"):gsub("%-%-%[%[.-%]%]", ""):gsub("%-%-[^\n]*", "")
    f:close()
  end
  p:close()
  return out
end

--- edges[name] = {required names}; a dynamic require of "prefix." .. x
-- counts as an edge to every module under that prefix.
local function graph(sources)
  local edges = {}
  for name, src in pairs(sources) do
    local list = {}
    for target in src:gmatch('require%s*%(?%s*"(gigstack[%w_.]*)"') do list[#list + 1] = target end
    for prefix in src:gmatch('require%s*%(%s*"(gigstack[%w_.]*%.)"%s*%.%.') do
      for other in pairs(sources) do
        if other ~= name and other:sub(1, #prefix) == prefix then list[#list + 1] = other end
      end
    end
    edges[name] = list
  end
  return edges
end

--- Returns a list of problems: upward edges, unknown modules, cycles.
local function problems(edges)
  local out = {}
  for from, list in pairs(edges) do
    for _, to in ipairs(list) do
      local rf, rt = rank(from), rank(to)
      if not rf or not rt then
        out[#out + 1] = "no layer for " .. (rf and to or from)
      elseif rt > rf then
        out[#out + 1] = string.format("upward edge %s (%d) -> %s (%d)", from, rf, to, rt)
      end
    end
  end
  local state, stack = {}, {}
  local function visit(n)
    if state[n] == "done" then return end
    if state[n] == "open" then
      local cycle, on = {}, false
      for _, s in ipairs(stack) do
        if s == n then on = true end
        if on then cycle[#cycle + 1] = s end
      end
      cycle[#cycle + 1] = n
      out[#out + 1] = "cycle " .. table.concat(cycle, " -> ")
      return
    end
    state[n] = "open"
    stack[#stack + 1] = n
    for _, to in ipairs(edges[n] or {}) do visit(to) end
    stack[#stack] = nil
    state[n] = "done"
  end
  local names = {}
  for n in pairs(edges) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do visit(n) end
  table.sort(out)
  return out
end

describe("module layers", function()
  it("finds an upward edge and a cycle in a graph that has them", function()
    local found = problems{
      ["gigstack.fiscal.tax"] = { "gigstack.client" },
      ["gigstack.mock.a"] = { "gigstack.mock.b" },
      ["gigstack.mock.b"] = { "gigstack.mock.a" },
    }
    assert.same({
      "cycle gigstack.mock.a -> gigstack.mock.b -> gigstack.mock.a",
      "upward edge gigstack.fiscal.tax (2) -> gigstack.client (3)",
    }, found)
  end)

  it("has every module of lua/gigstack in a layer folder that requires only lower layers, without cycles", function()
    local sources = modules()
    local n = 0
    for _ in pairs(sources) do n = n + 1 end
    assert.is_true(n > 40, "found only " .. n .. " modules")
    assert.same({}, problems(graph(sources)))
  end)
end)
