--- This process's figures from /proc/self/status, for the bench clients.
local M = {}

--- A "kB" field of /proc/self/status (VmRSS, VmHWM, ...) as a number.
function M.status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+) kB"))
end

return M
