--- The run's report: one entry per item a workflow handled, with its
-- outcome ("done", "failed", "skipped", "dry_run"). gigstack-run
-- --report FILE writes it as JSON or CSV (by extension) and exits 3 when
-- an item failed.
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"

local M = { items = {} }

-- The progress line's counts, kept up to date as entries are added:
-- recounting every entry on each add made a 10,000-item batch on a
-- terminal walk 50 million entries (issue 12). Starts over when
-- M.items is another table (reset, or replaced by the caller).
local live = { n = 0, counts = {} }
local function live_counts()
  local items = M.items
  if live.items ~= items or live.n > #items then live.items, live.n, live.counts = items, 0, {} end
  local c = live.counts
  for i = live.n + 1, #items do
    local o = items[i].outcome
    c[o] = (c[o] or 0) + 1
  end
  live.n = #items
  return c
end

--- report.add{item = "V-1", outcome = "done", detail = "...", ...}
function M.add(entry)
  if type(entry) ~= "table" or entry.item == nil or type(entry.outcome) ~= "string" then
    error("report.add: needs {item = ..., outcome = ...}", 2)
  end
  M.items[#M.items + 1] = entry
  if M.progress then   -- a live line on a terminal (gigstack-run sets this on a TTY)
    local c = live_counts()
    io.stderr:write(string.format("\r%d items: %d done, %d failed, %d skipped ", #M.items, c.done or 0,
      c.failed or 0, c.skipped or 0))
    io.stderr:flush()
  end
end

--- The end-of-run table: one line per outcome.
function M.summary()
  local c = M.counts()
  local names = {}
  for k in pairs(c) do names[#names + 1] = k end
  table.sort(names)
  local lines = { string.format("%-10s %6s", "outcome", "items") }
  for _, k in ipairs(names) do lines[#lines + 1] = string.format("%-10s %6d", k, c[k]) end
  lines[#lines + 1] = string.format("%-10s %6d", "total", #M.items)
  return lines
end

--- Forget every entry (a new batch in the same process).
function M.reset()
  M.items = {}
end

function M.counts()
  local c = {}
  for _, e in ipairs(M.items) do c[e.outcome] = (c[e.outcome] or 0) + 1 end
  return c
end

local function csv_field(v)
  v = v == nil and "" or errors.scrub(tostring(v))
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

--- Write to path: .csv as CSV (columns: every key seen, item and
-- outcome first), anything else as a JSON array.
function M.write(path)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  if path:lower():match("%.csv$") then
    local cols, seen = { "item", "outcome" }, { item = true, outcome = true }
    for _, e in ipairs(M.items) do
      local keys = {}
      for k in pairs(e) do if not seen[k] then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do seen[k] = true; cols[#cols + 1] = k end
    end
    f:write(table.concat(cols, ","), "\n")
    for _, e in ipairs(M.items) do
      local row = {}
      for i, k in ipairs(cols) do row[i] = csv_field(e[k]) end
      f:write(table.concat(row, ","), "\n")
    end
  else
    local rows = json.array()
    for i, e in ipairs(M.items) do
      local r = {}
      for k, v in pairs(e) do r[k] = errors.scrub(type(v) == "table" and tostring(v) or v) end
      rows[i] = r
    end
    f:write(assert(json.encode(rows)), "\n")
  end
  f:close()
  return true
end

return M
