--- multipart/form-data request bodies for the emulator's upload
-- endpoints (RFC 7578): parts by field name, each {name, filename,
-- type, data}, with a size limit per file.
local wire = require "gigstack.mock.wire"

local M = {}

M.MAX_FILE = 512 * 1024   -- bytes per part; a CSF PDF or a CSD file is far smaller

--- Parse ctx's request as multipart/form-data; returns {name = part}.
-- Fails 400 (not multipart, malformed) or 413 (a part over max_file).
function M.parse(ctx, max_file)
  max_file = max_file or M.MAX_FILE
  local ctype = ctx.req.headers["content-type"] or ""
  local boundary = ctype:match("^multipart/form%-data;.-boundary=\"([^\"]+)\"")
    or ctype:match("^multipart/form%-data;.-boundary=([^;%s]+)")
  if not boundary then
    wire.fail(400, "invalid_request_body", "the request must be multipart/form-data with a boundary")
  end
  local body = ctx.req.body or ""
  local delim = "--" .. boundary
  local parts = {}
  local at = body:find(delim, 1, true)
  if not at then wire.fail(400, "invalid_request_body", "multipart body has no part") end
  at = at + #delim
  while true do
    if body:sub(at, at + 1) == "--" then break end          -- the closing delimiter
    if body:sub(at, at + 1) ~= "\r\n" then wire.fail(400, "invalid_request_body", "malformed multipart delimiter") end
    local head_end = body:find("\r\n\r\n", at + 2, true)
    if not head_end then wire.fail(400, "invalid_request_body", "multipart part without headers") end
    local head = body:sub(at + 2, head_end - 1)
    local next_at = body:find("\r\n" .. delim, head_end + 4, true)
    if not next_at then wire.fail(400, "invalid_request_body", "multipart body is not terminated") end
    local data = body:sub(head_end + 4, next_at - 1)
    local part = { data = data }
    for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
      local k, v = line:match("^([^:]+):%s*(.*)$")
      k = k and k:lower()
      if k == "content-disposition" then
        part.name = v:match('[; ]name="([^"]*)"')
        part.filename = v:match('filename="([^"]*)"')
      elseif k == "content-type" then
        part.type = v
      end
    end
    if not part.name then wire.fail(400, "invalid_request_body", "multipart part without a name") end
    if #data > max_file then
      wire.fail(413, "file_upload_error", part.name .. ": " .. #data .. " bytes exceed the limit of "
        .. max_file .. " bytes per file", { { field = part.name, message = "exceeds " .. max_file .. " bytes" } })
    end
    parts[part.name] = part
    at = next_at + 2 + #delim
  end
  return parts
end

return M
