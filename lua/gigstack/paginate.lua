--- List pages and the `each` iterator that follows every page. Both
-- envelope generations: has_more/hasMore, total_results/totalResults,
-- cursor in `next`; `null` entries in data are skipped.
local json = require "gigstack.async.json"
local errors = require "gigstack.async.errors"

local M = {}

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil): UTC arithmetic, independent of the host's TZ.
local function days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function month_days(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return ({ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[m]
end

local DATE_RULE = "unix seconds, an os.time table, or an ISO date (YYYY-MM, YYYY-MM-DD, "
  .. "YYYY-MM-DDTHH:MM:SS with Z or an offset; UTC when none)"

--- A created-filter value as unix seconds; `last` picks the end of a
-- date-only or month-only value (its last second), as --to does in the
-- CLI. Returns seconds or nil, the rule broken.
function M.unix(v, last)
  if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
  if math.type(v) == "integer" then
    if v < 0 then return nil, "must not be negative" end
    if v >= 100000000000 then return nil, "must be unix seconds (10 digits), not milliseconds" end
    return v
  elseif type(v) == "table" then
    if math.type(v.year) ~= "integer" or math.type(v.month) ~= "integer" or math.type(v.day) ~= "integer" then
      return nil, "an os.time table needs integer year, month and day"
    end
    local ok, t = pcall(os.time, v)
    if not ok or not t then return nil, "is not a time os.time accepts" end
    return t
  elseif type(v) ~= "string" then
    return nil, "must be " .. DATE_RULE
  end
  if v:match("^%d+$") then return M.unix(math.tointeger(tonumber(v)), last) end
  local y, m, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-?(%d?%d?)(.*)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not y or m < 1 or m > 12 or (d and (d < 1 or d > month_days(y, m))) then
    return nil, "must be " .. DATE_RULE
  end
  if not d then
    if rest ~= "" then return nil, "must be " .. DATE_RULE end
    if last then return (days(y, m, month_days(y, m)) + 1) * 86400 - 1 end
    return days(y, m, 1) * 86400
  end
  if rest == "" then
    return days(y, m, d) * 86400 + (last and 86399 or 0)
  end
  local hh, mm, ss, zone = rest:match("^[T ](%d%d):(%d%d):?(%d?%d?)(.*)$")
  hh, mm, ss = tonumber(hh), tonumber(mm), tonumber(ss) or 0
  if not hh or hh > 23 or mm > 59 or ss > 59 then return nil, "must be " .. DATE_RULE end
  zone = zone:gsub("^%.%d+", "")      -- fractions of a second are dropped
  local offset = 0
  if zone ~= "" and zone ~= "Z" then
    local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, "must be " .. DATE_RULE end
    offset = (tonumber(zh) * 3600 + tonumber(zm) * 60) * (sign == "-" and -1 or 1)
  end
  return days(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss - offset
end

-- A validation error listing every problem, or nil when there is none.
local function refusal(problems)
  if #problems == 0 then return nil end
  local parts = {}
  for i, p in ipairs(problems) do parts[i] = p.field .. ": " .. p.rule end
  return errors.new{ kind = "validation", status = 0, message = table.concat(parts, "; "),
    details = problems }
end

--- The query of a list call: created_gte / created_lte, or created =
-- {gte, lte}, become the API's created[gte] / created[lte] in unix
-- seconds (see M.unix); everything else passes as is. Returns the
-- query or nil, a validation error value naming the field.
function M.query(params)
  local q, problems = {}, {}
  local function bound(field, v, wire_name, last)
    if v == nil then return end
    local t, why = M.unix(v, last)
    if t then q[wire_name] = t
    else problems[#problems + 1] = { field = field, rule = why, message = why } end
  end
  for k, v in pairs(params or {}) do
    if k ~= "created" and k ~= "created_gte" and k ~= "created_lte" then q[k] = v end
  end
  local created = params and params.created
  if created ~= nil and type(created) ~= "table" then
    problems[#problems + 1] = { field = "created", rule = "must be a table {gte, lte}",
      message = "must be a table {gte, lte}" }
  elseif created then
    bound("created.gte", created.gte, "created[gte]", false)
    bound("created.lte", created.lte, "created[lte]", true)
  end
  if params then
    bound("created_gte", params.created_gte, "created[gte]", false)
    bound("created_lte", params.created_lte, "created[lte]", true)
  end
  local err = refusal(problems)
  if err then return nil, err end
  return q
end

--- The SAT list's `from` / `to`: the service compares them with the
-- CFDI's issue_date as strings ("2026-10-31" sorts before
-- "2026-10-31T09:00:00"), so both go out as YYYY-MM-DDTHH:MM:SS, a
-- date-only or month-only `to` at its last second. Any form M.unix takes.
function M.sat_query(q)
  local problems = {}
  for _, k in ipairs{ "from", "to" } do
    if q[k] ~= nil then
      local t, why = M.unix(q[k], k == "to")
      if t then q[k] = os.date("!%Y-%m-%dT%H:%M:%S", t)
      else problems[#problems + 1] = { field = k, rule = why, message = why } end
    end
  end
  local err = refusal(problems)
  if err then return nil, err end
  return q
end

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
-- cursor names the query parameter of the cursor (default `next`; the
-- SAT list takes `starting_after`).
function M.each(fetch, params, cursor)
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
        query[cursor or "next"] = page.next
      end
      local p, err = fetch(query)
      if not p then error(err, 2) end
      page, index = p, 0
      if #p.data == 0 and not (p.has_more and p.next) then done = true end
    end
  end
end

return M
