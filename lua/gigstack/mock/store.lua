--- Emulator state: teams, API keys and per-team collections kept in
-- insertion order, with deterministic ids for a given seed.
local json = require "gigstack.async.json"

local M = {}
local Store = {}
Store.__index = Store

local ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

--- The sandbox every emulator starts with: a master team with a key,
-- a connected vendor team in the same billing account, and a team of
-- another billing account (for the Connect rules).
function M.default_seed()
  return {
    teams = {
      { id = "team_mock", name = "Mock Master SA de CV", legal_name = "MOCK MASTER SA DE CV",
        tax_id = "MMA010101AB9", tax_system = "601", billing_account = "ba_mock",
        is_master_team = true, address = { zip = "06600" } },
      { id = "team_vendor", name = "Vendor Uno", legal_name = "VENDOR UNO SA DE CV",
        tax_id = "VUN010101AB1", tax_system = "601", billing_account = "ba_mock",
        is_master_team = false, address = { zip = "64000" } },
      { id = "team_other", name = "Otra Cuenta", legal_name = "OTRA CUENTA SA DE CV",
        tax_id = "OCU010101AB5", tax_system = "601", billing_account = "ba_other",
        is_master_team = true, address = { zip = "44100" } },
    },
    api_keys = { sk_test_mock = "team_mock", sk_test_vendor = "team_vendor",
                 sk_test_other = "team_other" },
  }
end

--- Objects from the documentation's examples, so they run verbatim.
local DOC_CLIENTS = {
  { id = "client_7kL2mX9pNqR4eWs", name = "Maria Rodriguez Santos", legal_name = "MARIA RODRIGUEZ SANTOS",
    tax_id = "ROSM850315QT8", tax_system = "612", email = "maria.rodriguez@example.com", use = "G03",
    address = { zip = "06100", country = "MEX" } },
  { id = "client_customer123", name = "Cliente Marketplace", legal_name = "CLIENTE MARKETPLACE",
    tax_id = "CAMA911215CJ0", tax_system = "612", email = "cliente@example.com", use = "G03",
    address = { zip = "03100" } },
}

local function doc_teams(ba)
  local out = {}
  for _, id in ipairs{ "team_9ZwE3pF8qKmJ7xL", "team_subsidiary123", "team_vendor456", "team_connectPartner123" } do
    out[#out + 1] = { id = id, name = id:sub(6), legal_name = id:sub(6):upper(), tax_id = "EKU9003173C9",
      tax_system = "601", billing_account = ba, is_master_team = id == "team_9ZwE3pF8qKmJ7xL",
      address = { zip = "06600" }, metadata = id == "team_vendor456" and { vendor_code = "ABC123" } or {} }
  end
  return out
end

--- seed: a table like default_seed() (add examples = true for the
-- documentation's example teams and clients), or a saved snapshot.
function M.new(seed, rng_seed)
  local s = setmetatable({ teams = {}, keys = {}, data = {},
    rng = rng_seed or 0x5eed, clock = nil }, Store)
  seed = seed or M.default_seed()
  local teams = seed.teams
  if teams[1] == nil then   -- a saved snapshot keeps teams by id
    for _, t in pairs(teams) do s.teams[t.id] = t end
  else
    for _, t in ipairs(teams) do s.teams[t.id] = t end
  end
  for k, team in pairs(seed.api_keys) do s.keys[k] = team end
  if seed.data then
    s.data = seed.data
    s.rng = math.tointeger(seed.rng) or s.rng
  elseif seed.examples then
    for _, t in ipairs(doc_teams("ba_mock")) do s.teams[t.id] = s.teams[t.id] or t end
    for _, team in ipairs{ "team_mock", "team_9ZwE3pF8qKmJ7xL", "team_subsidiary123" } do
      for _, c in ipairs(DOC_CLIENTS) do
        local copy = { object = "client", livemode = false, created_at = 1745892357, team = team, is_valid = true }
        for k, v in pairs(c) do copy[k] = v end
        s:insert(team, "clients", copy)
      end
    end
  end
  return s
end

--- Everything, for Emulator:save (and M.new to load back).
function Store:snapshot()
  return { teams = self.teams, api_keys = self.keys, data = self.data, rng = self.rng }
end

-- 64-bit LCG (Knuth's MMIX constants); wraps in Lua integers.
function Store:random()
  self.rng = self.rng * 6364136223846793005 + 1442695040888963407
  return (self.rng >> 33) & 0x7fffffff
end

local lcg_chars = require("gigstack.core").lcg_chars
local sub = string.sub

-- ids and uuids draw from the same LCG as Store:random (the emulator
-- makes several per request): the same seed gives the same ids. The
-- characters are drawn in C (core.lcg_chars: the same steps and the
-- same character for each step as a Lua loop; an id's prefix included).
function Store:id(prefix, sep)
  local text, rng = lcg_chars(self.rng, 16, ALPHABET, prefix, sep or "_")
  self.rng = rng
  return text
end

local HEX = "0123456789ABCDEF"
local VARIANT = { [0] = "8", "9", "A", "B" }   -- 10xx

-- 32 hex digits, 8-4-4-4-12; the 13th is the version ("4") and the
-- 17th, the variant, comes from one more step
function Store:uuid()
  local hex, rng = lcg_chars(self.rng, 32, HEX)
  rng = rng * 6364136223846793005 + 1442695040888963407
  self.rng = rng
  return sub(hex, 1, 8) .. "-" .. sub(hex, 9, 12) .. "-4" .. sub(hex, 14, 16) .. "-"
    .. VARIANT[(rng >> 33) % 4] .. sub(hex, 18, 20) .. "-" .. sub(hex, 21, 32)
end

function Store:now()
  return self.clock and self.clock() or os.time()
end

--- The collection `name` of `team`: {items = id -> object, order = ids}.
function Store:coll(team, name)
  local t = self.data[team]
  if not t then t = {}; self.data[team] = t end
  local c = t[name]
  if not c then c = { items = {}, order = {} }; t[name] = c end
  return c
end

-- Snapshots saved by older versions have no `pos`: rebuild it.
local function positions(c)
  if not c.pos then
    c.pos = {}
    for i, id in ipairs(c.order) do c.pos[id] = c.pos[id] or i end
  end
  return c.pos
end

--- When an object was created, in unix seconds: created_at (seconds),
-- else the older generation's created / timestamp (milliseconds).
function M.created_of(obj)
  local t = obj.created_at
  if type(t) == "number" then return t end
  t = obj.created or obj.timestamp
  if type(t) == "number" then return t // 1000 end
  return nil
end

local JOURNAL_SLOTS = 6   -- see Store:begin

-- one write on the journal j: op, then where (team, collection or series,
-- id) and the two values rollback needs
local function journal_write(j, op, team, name, id, a, b)
  local n = j.n
  j[n + 1], j[n + 2], j[n + 3], j[n + 4], j[n + 5], j[n + 6] = op, team, name, id, a, b
  j.n = n + JOURNAL_SLOTS
end

-- Collections keep an append-only `order` of ids and each id's position
-- (`pos`), also after a removal: a page cursor stays valid when its item
-- is deleted or stops matching a filter.
function Store:insert(team, name, obj)
  local c = self:coll(team, name)
  local pos = c.pos or positions(c)
  local id = obj.id
  local known = pos[id]
  local journal = self.journal
  if journal and not M.DURABLE[name] then journal_write(journal, "insert", team, name, id, not known, c.items[id]) end
  if not known then
    local order = c.order
    local n = #order + 1
    order[n] = id
    pos[id] = n
    -- listing by time follows insertion order until an object is
    -- created before the newest one (the X-Mock-Now test hook)
    local t = M.created_of(obj)
    if t then
      if c.latest and t < c.latest then c.unordered = true end
      if not c.latest or t > c.latest then c.latest = t end
    end
  end
  c.items[id] = obj
  return obj
end

-- Collections a failed request still writes to: the record of the
-- failure itself (GET /invoices/errors lists a stamp the SAT refused).
M.DURABLE = { cfdi_errors = true }

--- Start journaling writes (one request). Store:rollback undoes every
-- insert, removal and folio counter taken since.
--
-- The journal is one flat array, JOURNAL_SLOTS slots per write (op, team,
-- name or series, id, then two values), instead of a table per write and
-- a copy of every team's folio counters per request: a register writes
-- six times and takes one folio.
function Store:begin()
  self.journal = { n = 0 }
end

function Store:commit()
  self.journal = nil
end

--- The next folio of `series` in team `team_id` (1, 2, ...), journaled.
function Store:next_folio(team_id, series)
  local team = self.teams[team_id]
  local folios = team.folios
  local j = self.journal
  if j then journal_write(j, "folio", team_id, series, false, folios ~= nil, folios and folios[series]) end
  if not folios then folios = {}; team.folios = folios end
  local folio = (folios[series] or 0) + 1
  folios[series] = folio
  return folio
end

function Store:rollback()
  local j = self.journal
  if not j then return end
  self.journal = nil
  for i = j.n - JOURNAL_SLOTS + 1, 1, -JOURNAL_SLOTS do
    local op, team, name, id, a, b = j[i], j[i + 1], j[i + 2], j[i + 3], j[i + 4], j[i + 5]
    if op == "folio" then
      local t = self.teams[team]
      if a then t.folios[name] = b else t.folios = nil end   -- a: the team had counters
    else
      local c = self:coll(team, name)
      if op == "insert" then
        if a then   -- a new id
          c.items[id] = nil
          if c.order[#c.order] == id then c.order[#c.order] = nil end
          c.pos[id] = nil
        else
          c.items[id] = b
        end
      else -- remove
        c.items[id] = b
        if c.gone then c.gone[id] = nil end
      end
    end
  end
end

function Store:get(team, name, id)
  return self:coll(team, name).items[id]
end

function Store:remove(team, name, id)
  local c = self:coll(team, name)
  if not c.items[id] then return false end
  local j = self.journal
  if j then journal_write(j, "remove", team, name, id, false, c.items[id]) end
  c.gone = c.gone or {}     -- kept so a cursor on it still knows its place
  c.gone[id] = c.items[id]
  c.items[id] = nil
  return true
end


-- A page in an explicit order: by opts.key (order_by) or by creation
-- time, ties by insertion; the cursor's place is found from its own key,
-- also when it was removed or no longer matches the filter.
local function sorted_page(c, pos, opts)
  local key = opts.key or function(obj) return M.created_of(obj) or 0 end
  local asc = opts.asc
  local function before(a, b)
    if a.key ~= b.key then
      if asc then return a.key < b.key end
      return a.key > b.key
    end
    if asc then return a.pos < b.pos end
    return a.pos > b.pos
  end
  local rows = {}
  for id, obj in pairs(c.items) do
    if not opts.filter or opts.filter(obj) then
      rows[#rows + 1] = { obj = obj, pos = pos[id], key = key(obj) }
    end
  end
  table.sort(rows, before)
  local start = 1
  if opts.after then
    local at = pos[opts.after]
    local obj = c.items[opts.after] or (c.gone and c.gone[opts.after])
    if not at or not obj then return nil end
    local cursor = { obj = obj, pos = at, key = key(obj) }
    start = #rows + 1
    for i, r in ipairs(rows) do
      if before(cursor, r) then start = i; break end
    end
  end
  local items = json.array()
  local has_more = false
  for i = start, #rows do
    if #items == opts.limit then has_more = true; break end
    items[#items + 1] = rows[i].obj
  end
  return items, has_more, has_more and items[#items].id or nil, #rows
end

--- Matching objects newest first (or oldest first with asc), or in
-- opts.key order, then a page after the cursor. Returns items,
-- has_more, next, total; nil for a cursor this collection never had.
function Store:page(team, name, opts)
  local c = self:coll(team, name)
  if opts.key or c.unordered then return sorted_page(c, positions(c), opts) end
  local first, last, step = #c.order, 1, -1
  if opts.asc then first, last, step = 1, #c.order, 1 end
  local pos = positions(c)
  if opts.after then
    local at = pos[opts.after]
    if not at then return nil end
    first = at + step
  end
  local total = 0
  for _, obj in pairs(c.items) do
    if not opts.filter or opts.filter(obj) then total = total + 1 end
  end
  local items = json.array()
  local has_more = false
  for i = first, last, step do
    local id = c.order[i]
    local obj = c.items[id]
    if obj and pos[id] == i and (not opts.filter or opts.filter(obj)) then
      if #items == opts.limit then has_more = true; break end
      items[#items + 1] = obj
    end
  end
  return items, has_more, has_more and items[#items].id or nil, total
end

return M
