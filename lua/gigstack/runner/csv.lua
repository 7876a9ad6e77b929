--- A small RFC 4180 CSV reader: quoted fields, doubled quotes, commas
-- and newlines inside quotes. Rows come back as tables keyed by header.
-- Files saved by Excel work as they are: a UTF-8 byte-order mark is
-- dropped, CRLF ends a line, and a header separated by `;` or tabs (the
-- Excel default where `,` is the decimal mark) sets the separator.
local M = {}

--- The separator of a header line: the most frequent of , ; and tab
-- outside quotes (`,` on a tie or when none appears).
function M.detect_separator(text)
  local line = text:match("^[^\r\n]*")
  local counts, quoted = { [","] = 0, [";"] = 0, ["\t"] = 0 }, false
  for ch in line:gmatch(".") do
    if ch == '"' then quoted = not quoted
    elseif not quoted and counts[ch] then counts[ch] = counts[ch] + 1 end
  end
  local best = ","
  for _, sep in ipairs{ ";", "\t" } do
    if counts[sep] > counts[best] then best = sep end
  end
  return best
end

local function split_records(text, sep)
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
    elseif ch == sep then row[#row + 1] = table.concat(field); field = {}
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

--- Parse text; returns rows (each {header = value, _line = n}) and
-- {header = {names}, sep = separator}, or nil, err. opts.sep forces a
-- separator instead of detecting it.
function M.parse(text, opts)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end   -- UTF-8 BOM
  local sep = opts and opts.sep or M.detect_separator(text)
  local records, err = split_records(text, sep)
  if not records then return nil, err end
  local header = records[1]
  if not header then return nil, "empty CSV" end
  for i, name in ipairs(header) do header[i] = name:match("^%s*(.-)%s*$") end
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
  return rows, { header = header, sep = sep }
end

function M.read(path, opts)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return M.parse(text, opts)
end

return M
