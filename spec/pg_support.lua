--- A throwaway PostgreSQL cluster for the journal specs: started once per
-- busted run (scripts/dev/pg_cluster.sh: initdb + pg_ctl as an
-- unprivileged user, a Unix socket in a temporary directory), stopped by
-- M.stop() and, should busted die first, by a watcher that sees it gone.
-- When the server cannot start, M.url() raises with the reason: the
-- PostgreSQL specs then fail, they are never skipped.
local support = require "support"

local M = {}

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

function M.url()
  if M.failed then error(M.failed, 2) end
  if M.cached then return M.cached end
  local dir = os.tmpname()
  os.remove(dir)
  local code, out, err = support.sh("sh scripts/dev/pg_cluster.sh start " .. dir .. " " .. own_pid())
  if code ~= 0 then
    M.failed = "PostgreSQL did not start (scripts/dev/pg_cluster.sh exit " .. tostring(code) .. "): " .. err
    error(M.failed, 2)
  end
  M.dir, M.cached = dir, out:match("^(%S+)")
  return M.cached
end

--- Stop the cluster and remove its directory.
function M.stop()
  if M.dir then os.execute("sh scripts/dev/pg_cluster.sh stop " .. M.dir) end
  M.dir, M.cached = nil, nil
end

--- Stop the server (fast) and start it again on the same directory.
function M.restart()
  local code, _, err = support.sh("sh scripts/dev/pg_cluster.sh restart " .. M.dir)
  assert(code == 0, err)
end

--- Run SQL through psql (tests only: terminate a backend, read tables).
function M.psql(sql, url)
  local code, out, err = support.sh("env -u LD_PRELOAD psql -X -q -A -t -v ON_ERROR_STOP=1 '"
    .. (url or M.cached) .. "' -c \"" .. sql .. "\"")
  assert(code == 0, "psql: " .. err)
  return out
end

return M
