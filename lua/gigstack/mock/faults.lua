--- Fault injection for the emulator: by rates ("429=0.05,503=0.05,
-- reset_before=0.03,reset_after=0.03,stall=0.01") drawn from a seeded
-- generator, or forced per request with the header
-- `X-Mock-Fault: KIND[*N]` (the first N identical requests get it).
local M = {}

--- Every kind, in the order rates are drawn (keeps a seed's sequence).
M.KINDS = { "429", "500", "502", "503", "504", "html", "empty", "reset_before",
  "reset_after", "stall", "truncate" }
local KNOWN = {}
for _, k in ipairs(M.KINDS) do KNOWN[k] = true end

M.HELP = "429, 500, 502, 503, 504 (JSON error), html (502 HTML page), empty (503, no body), "
  .. "reset_before (reset, handler not run), reset_after (handler ran, then reset), "
  .. "stall (no answer), truncate (body cut short)"

--- "429=0.05,reset_after=0.03" -> {["429"] = 0.05, ...} or nil, message.
function M.parse(spec)
  local rates, total = {}, 0
  if type(spec) == "table" then
    for k, v in pairs(spec) do rates[tostring(k)] = v end
  else
    for item in tostring(spec or ""):gmatch("[^,%s]+") do
      local kind, p = item:match("^([%w_]+)=([%d%.]+)$")
      if not kind then return nil, "fault " .. item .. ": expected KIND=PROBABILITY" end
      rates[kind] = tonumber(p)
    end
  end
  for kind, p in pairs(rates) do
    if not KNOWN[kind] then return nil, "unknown fault " .. kind .. " (known: " .. M.HELP .. ")" end
    if type(p) ~= "number" or p < 0 or p > 1 then
      return nil, "fault " .. kind .. ": probability must be between 0 and 1"
    end
    total = total + p
  end
  if total > 1 then return nil, "fault probabilities add up to more than 1" end
  return rates
end

local Injector = {}
Injector.__index = Injector

--- opts: rates (table or string), seed, retry_after (s), stall (s).
function M.new(opts)
  opts = opts or {}
  local rates, err = M.parse(opts.rates or {})
  if not rates then return nil, err end
  return setmetatable({ rates = rates, state = (opts.seed or 1) * 2654435761 + 1,
    counts = {}, forced = {}, retry_after = opts.retry_after or 1, stall = opts.stall or 10 },
    Injector)
end

function Injector:random()
  self.state = self.state * 6364136223846793005 + 1442695040888963407
  return ((self.state >> 11) & 0xfffffffff) / 0x1000000000
end

--- The fault for this request, or nil; counts what it returns.
function Injector:pick(req)
  local kind
  local forced = req.headers["x-mock-fault"]
  if forced then
    local k, n = forced:match("^%s*([%w_]+)%*?(%d*)%s*$")
    if k and KNOWN[k] then
      local key = forced .. "\0" .. req.method .. "\0" .. req.target .. "\0" .. (req.body or "")
      local used = self.forced[key] or 0
      if n == "" or used < tonumber(n) then
        self.forced[key] = used + 1
        kind = k
      end
    end
  elseif next(self.rates) then
    local r, acc = self:random(), 0
    for _, k in ipairs(M.KINDS) do
      acc = acc + (self.rates[k] or 0)
      if r < acc then kind = k; break end
    end
  end
  if kind then self.counts[kind] = (self.counts[kind] or 0) + 1 end
  return kind
end

--- "429=12 reset_after=7 ..." in KINDS order.
function Injector:summary()
  local parts = {}
  for _, k in ipairs(M.KINDS) do
    if self.counts[k] then parts[#parts + 1] = k .. "=" .. self.counts[k] end
  end
  return #parts > 0 and table.concat(parts, " ") or "none"
end

return M
