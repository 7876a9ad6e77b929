--- SAT CFDI 4.0 catalogs as Lua data, with lookups. Data:
-- gigstack/fiscal/catalogs.lua (generated from shared/reference).
local catalogs = require "gigstack.fiscal.catalogs"
local decimal = require "gigstack.fiscal.decimal"

local M = { catalogs = catalogs }

local index = {}
local function by_key(name)
  if not index[name] then
    local t = {}
    for _, row in ipairs(catalogs[name]) do
      if type(row) == "table" and row.clave then t[row.clave] = row end
    end
    index[name] = t
  end
  return index[name]
end

--- Row for `code` in catalog `name` (e.g. "c_FormaPago", "03") or nil.
function M.lookup(name, code)
  if not catalogs[name] then error("sat: no catalog " .. tostring(name), 2) end
  return by_key(name)[code]
end

function M.regimen(code) return M.lookup("c_RegimenFiscal", code) end
function M.uso(code) return M.lookup("c_UsoCFDI", code) end
function M.forma_pago(code) return M.lookup("c_FormaPago", code) end
function M.metodo_pago(code) return M.lookup("c_MetodoPago", code) end
function M.objeto_imp(code) return M.lookup("c_ObjetoImp", code) end
function M.tipo_comprobante(code) return M.lookup("c_TipoDeComprobante", code) end
function M.tipo_relacion(code) return M.lookup("c_TipoRelacion", code) end
function M.exportacion(code) return M.lookup("c_Exportacion", code) end
function M.periodicidad(code) return M.lookup("c_Periodicidad", code) end
function M.mes(code) return M.lookup("c_Meses", code) end
function M.moneda(code) return M.lookup("c_Moneda", code) end
function M.motivo_cancelacion(code) return M.lookup("c_MotivoCancelacion", code) end
function M.unidad(code) return M.lookup("c_ClaveUnidad", code) end

--- Is `key` a c_ClaveUnidad code? "known" when in the shipped subset,
-- "pattern" when it only fits the catalog's shape (1 to 3 capital
-- letters or digits; the SAT's catalog has about 2,400 codes), nil when not.
function M.clave_unidad(key)
  if type(key) ~= "string" or not key:match("^[A-Z0-9][A-Z0-9]?[A-Z0-9]?$") then return nil end
  return M.unidad(key) and "known" or "pattern"
end

local IMPUESTO_CODES = { ISR = "001", IVA = "002", IEPS = "003" }
local IMPUESTO_NAMES = { ["001"] = "ISR", ["002"] = "IVA", ["003"] = "IEPS" }

--- "IVA" / "iva" / "002" -> "IVA", or nil.
function M.impuesto(v)
  if type(v) ~= "string" then return nil end
  local up = v:upper()
  if IMPUESTO_CODES[up] then return up end
  return IMPUESTO_NAMES[v]
end

function M.impuesto_code(name)
  return IMPUESTO_CODES[name]
end

--- Decimals of a currency (c_Moneda), or nil for an unknown code.
function M.decimals(currency)
  local row = M.moneda(currency)
  return row and row.decimales
end

--- Does régimen `code` apply to persona "fisica" / "moral"?
function M.regimen_allows(code, persona)
  local row = M.regimen(code)
  if not row then return false end
  if persona == "fisica" then return row.fisica end
  if persona == "moral" then return row.moral end
  return true
end

--- Is uso `uso` allowed for a receptor with régimen `regimen` and
-- persona "fisica"/"moral"? Either may be nil (unknown): only what is
-- known is checked. Returns true or false, reason.
function M.uso_allows(uso, regimen, persona)
  local row = M.uso(uso)
  if not row then return false, "is not a c_UsoCFDI code" end
  if persona == "fisica" and not row.fisica then return false, "is not for personas físicas" end
  if persona == "moral" and not row.moral then return false, "is not for personas morales" end
  if regimen == nil then return true end
  for _, r in ipairs(row.regimenesReceptor or {}) do
    if r == regimen then return true end
  end
  return false, "does not allow régimen " .. tostring(regimen)
    .. " (allowed: " .. table.concat(row.regimenesReceptor or {}, ", ") .. ")"
end

--- The uso a receptor gets when none is given: S01 for the generic RFCs
-- and régimen 616 (c_UsoCFDI allows them no G03), else the API's G03.
function M.default_uso(tax_id, regimen)
  if tax_id == "XAXX010101000" or tax_id == "XEXX010101000" or tostring(regimen) == "616" then
    return "S01"
  end
  return "G03"
end

-- c_TasaOCuota with its impuesto's name and its values as Decimals, read
-- once (every line of every request checks its taxes against it).
local tasa_rows
local function tasas()
  if not tasa_rows then
    tasa_rows = {}
    for i, row in ipairs(catalogs.c_TasaOCuota) do
      local fijo = row.tipo == "Fijo"
      tasa_rows[i] = { impuesto = row.impuesto:match("^(%u+)"), factor = row.factor, retencion = row.retencion,
        traslado = row.traslado, fijo = fijo, valor = decimal.new(row.valor),
        minimo = not fijo and decimal.new(row.minimo) or nil,
        text = fijo and row.valor or row.minimo .. "-" .. row.valor }
    end
  end
  return tasa_rows
end

-- A rate given as a number that was allowed is remembered (by side,
-- impuesto, factor and the number; bounded: emptied when full): the
-- same few rates come in every request, and the catalog never changes.
local allowed, allowed_n = { [true] = {}, [false] = {} }, 0

--- Is `rate` allowed for impuesto/factor as traslado or retención per
-- c_TasaOCuota (Fijo exact, Rango inclusive)? Returns true or false, reason.
function M.tasa_allows(impuesto, factor, rate, withholding)
  if factor == "Exento" then
    if withholding then return false, "Exento applies only to transferred taxes" end
    return true
  end
  local memo = allowed[not not withholding][impuesto]
  memo = memo and memo[factor]
  if memo and memo[rate] then return true end
  local r, err = decimal.parse(rate)
  if not r then return false, err end
  local seen = {}
  for _, row in ipairs(tasas()) do
    if row.impuesto == impuesto and row.factor == factor
        and ((withholding and row.retencion) or (not withholding and row.traslado)) then
      if row.fijo and r == row.valor or not row.fijo and r >= row.minimo and r <= row.valor then
        if type(rate) == "number" and type(impuesto) == "string" and type(factor) == "string" then
          if allowed_n >= 512 then allowed, allowed_n = { [true] = {}, [false] = {} }, 0 end
          local by_imp = allowed[not not withholding]
          local by_factor = by_imp[impuesto] or {}
          by_imp[impuesto] = by_factor
          local rates = by_factor[factor] or {}
          by_factor[factor] = rates
          rates[rate] = true     -- a NaN never gets here: parse refuses it
          allowed_n = allowed_n + 1
        end
        return true
      end
      seen[#seen + 1] = row.text
    end
  end
  if #seen == 0 then
    return false, string.format("%s %s is not allowed as %s", impuesto, factor,
      withholding and "a retención" or "a traslado")
  end
  return false, string.format("%s is not a c_TasaOCuota value for %s %s %s (allowed: %s)",
    r:format(6), impuesto, factor, withholding and "retención" or "traslado",
    table.concat(seen, ", "))
end

return M
