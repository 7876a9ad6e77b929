--- Option tables of the workflows: an unknown key is an error naming it
-- and the known ones (a misspelt `untill` must not silently widen a
-- nightly job to every payment).
local M = {}

--- check("auto_invoice.from_payments", opts, {"since", "until", ...}) -> opts
-- (a new empty table when opts is nil); raises at the caller's caller.
function M.check(where, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(where .. ": options must be a table", 3) end
  local allowed = {}
  for _, k in ipairs(known) do allowed[k] = true end
  local unknown = {}
  for k in pairs(opts) do
    if not allowed[k] then unknown[#unknown + 1] = tostring(k) end
  end
  if #unknown > 0 then
    table.sort(unknown)
    local list = {}
    for i, k in ipairs(known) do list[i] = k end
    table.sort(list)
    error(string.format("%s: unknown option%s %s (known: %s)", where, #unknown > 1 and "s" or "",
      table.concat(unknown, ", "), table.concat(list, ", ")), 3)
  end
  return opts
end

return M
