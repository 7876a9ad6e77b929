--- Catalogs (older docs), ping (older docs, all four methods) and the
-- emulator's own event log and counts for tests (GET /v2/_mock/events,
-- /v2/_mock/stats).
local wire = require "gigstack.mock.wire"
local json = require "gigstack.async.json"
local sat = require "gigstack.fiscal.sat"

local M = {}

local CATALOGS = { "c_RegimenFiscal", "c_UsoCFDI", "c_FormaPago", "c_MetodoPago", "c_ObjetoImp", "c_Impuesto",
  "c_TipoFactor", "c_TasaOCuota", "c_TipoDeComprobante", "c_TipoRelacion", "c_Exportacion", "c_Periodicidad",
  "c_Meses", "c_Moneda", "c_MotivoCancelacion", "c_ClaveUnidad" }

function M.routes(route)
  for _, method in ipairs{ "GET", "POST", "PUT", "DELETE" } do
    route(method, "^/ping$", function(ctx)
      return 200, wire.object({ message = "pong", method = method,
        timestamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z", ctx.store:now()), version = "2.0.0" }, "pong")
    end)
  end
  route("GET", "^/catalogs$", function()
    local out = json.array()
    for _, id in ipairs(CATALOGS) do out[#out + 1] = { id = id, entries = #sat.catalogs[id] } end
    return 200, wire.list(out, false, nil, #out, "Catalogs retrieved successfully")
  end)
  route("GET", "^/catalogs/([%w_]+)$", function(_, id)
    local rows = sat.catalogs[id]
    if not rows then wire.fail(404, "resource_not_found", "catalog " .. id .. " not found") end
    local data = json.array()
    for i, r in ipairs(rows) do data[i] = r end
    return 200, wire.object({ id = id, entries = data })
  end)
  -- what the emulator holds, for runs in other processes (--serve-mock):
  -- payments, invoices, duplicate idempotency keys and invoices
  route("GET", "^/_mock/stats$", function(ctx)
    return 200, wire.object(ctx:stats())
  end)
  route("GET", "^/_mock/events$", function(ctx)
    return 200, ctx:list("events", function(e) return not ctx.query.type or e.type == ctx.query.type end)
  end)
end

return M
