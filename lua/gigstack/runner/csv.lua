--- A small RFC 4180 CSV reader: quoted fields, doubled quotes, commas
-- and newlines inside quotes. Rows come back as tables keyed by header.
local M = {}

local function split_records(text)
  local records, row, field = {}, {}, {}
  local i, n, quoted = 1, #text, false
  while i <= n do
    local ch = text:sub(i, i)
    if quoted then
      if ch == '"' then
        if text:sub(i + 1, i + 1) == '"' then field[#field + 1] = '"'; i = i + 1
        else quoted = false end
      else
        field[#field + 1] = ch
      end
    elseif ch == '"' then quoted = true
    elseif ch == "," then row[#row + 1] = table.concat(field); field = {}
    elseif ch == "\n" or ch == "\r" then
      if ch == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      row[#row + 1] = table.concat(field); field = {}
      records[#records + 1] = row; row = {}
    else
      field[#field + 1] = ch
    end
    i = i + 1
  end
  if quoted then return nil, "unterminated quoted field" end
  if #field > 0 or #row > 0 then
    row[#row + 1] = table.concat(field)
    records[#records + 1] = row
  end
  return records
end

--- Parse text; returns rows (each {header = value, _line = n}) or nil, err.
function M.parse(text)
  local records, err = split_records(text)
  if not records then return nil, err end
  local header = records[1]
  if not header then return nil, "empty CSV" end
  local rows = {}
  for r = 2, #records do
    local rec = records[r]
    if not (#rec == 1 and rec[1] == "") then
      if #rec ~= #header then
        return nil, string.format("line %d: %d fields, the header has %d", r, #rec, #header)
      end
      local row = { _line = r }
      for c, name in ipairs(header) do row[name] = rec[c] end
      rows[#rows + 1] = row
    end
  end
  return rows
end

function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return M.parse(text)
end

return M
