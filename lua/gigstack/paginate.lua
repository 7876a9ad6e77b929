--- List pages and the `each` iterator that follows every page. Both
-- envelope generations: has_more/hasMore, total_results/totalResults,
-- cursor in `next`; `null` entries in data are skipped.
local json = require "gigstack.async.json"

local M = {}

--- Normalise a list envelope into a page table.
function M.page(env)
  local data = env.data
  if type(data) ~= "table" then data = {} end
  local items = json.array()
  for i = 1, #data do
    local v = data[i]
    if v ~= nil and v ~= json.null then items[#items + 1] = v end
  end
  local has_more = env.has_more
  if has_more == nil then has_more = env.hasMore end
  local next_cursor = env.next
  if next_cursor == json.null then next_cursor = nil end
  local total = env.total_results
  if total == nil then total = env.totalResults end
  return {
    data = items, has_more = has_more == true, next = next_cursor,
    total_results = total ~= json.null and total or nil, message = env.message,
  }
end

--- Iterator over every item of every page. params.limit sets the page
-- size; `break` stops early without fetching more. Errors raise.
function M.each(fetch, params)
  local query = {}
  for k, v in pairs(params or {}) do query[k] = v end
  local page, index, done = nil, 0, false
  return function()
    while true do
      if page and index < #page.data then
        index = index + 1
        return page.data[index]
      end
      if done then return nil end
      if page then
        if not (page.has_more and page.next) then done = true; return nil end
        query.next = page.next
      end
      local p, err = fetch(query)
      if not p then error(err, 2) end
      page, index = p, 0
      if #p.data == 0 and not (p.has_more and p.next) then done = true end
    end
  end
end

return M
