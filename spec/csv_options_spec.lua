-- Excel CSVs (BOM, CRLF, `;` and tab separators), one line for a bad
-- header, amounts checked up front, and workflow option tables that
-- reject unknown keys (from_payments honours since/until).
local gigstack = require "gigstack"
local auto_invoice = require "gigstack.workflows.auto_invoice"
local csv = require "gigstack.runner.csv"
local support = require "support"

local RUN = "./" .. support.build_dir() .. "/gigstack-run"
local SALES = "scripts/data/sales.csv"
local check = gigstack.check

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function write(text)
  return support.write_file(os.tmpname() .. ".csv", text)
end

-- The sample has no quoted field (no '"' in it), so swapping every comma
-- for another separator keeps the same cells.
local SAMPLE = slurp(SALES)
assert(not SAMPLE:find('"', 1, true))

describe("Excel CSVs", function()
  it("a UTF-8 BOM with CRLF line ends and a `;` file both invoice all 60 sales", function()
    for _, text in ipairs{
      "\239\187\191" .. SAMPLE:gsub("\n", "\r\n"),   -- Excel "CSV UTF-8"
      (SAMPLE:gsub(",", ";")),                       -- Excel where `,` is the decimal mark
      (SAMPLE:gsub(",", "\t")),                      -- "Text (tab delimited)"
    } do
      local path = write(text)
      local code, out, err = support.sh(RUN .. " --mock scripts/auto_invoice.lua " .. path)
      os.remove(path)
      assert.equals(0, code, err)
      assert.matches("sales read:%s+60\n", out)
      assert.matches("invoices issued:%s+60\n", out)
      assert.matches("failures:%s+0\n", out)
    end
  end)

  it("detects the separator from the header, outside quotes", function()
    assert.equals(";", csv.detect_separator("a;b;c\r\n1,5;2;3"))
    assert.equals("\t", csv.detect_separator("a\tb\n"))
    assert.equals(",", csv.detect_separator('"x;y;z",b\n'))
    local rows, info = assert(csv.parse("\239\187\191id;name\r\n1;\"A;B\"\r\n"))
    assert.same({ { "id", "name" }, ";" }, { info.header, info.sep })
    assert.same({ id = "1", name = "A;B", _line = 2 }, rows[1])
  end)

  it("the substring reader keeps the RFC 4180 rules of the character walk it replaced", function()
    -- expected values are what the character-by-character reader returned
    local cases = {
      { "a,b\n1,2", { { _line = 2, a = "1", b = "2" } } },
      { 'a,b\r\n"x,""y""",2\r\n', { { _line = 2, a = 'x,"y"', b = "2" } } },
      { "a,b\r1,2\r", { { _line = 2, a = "1", b = "2" } } },
      { 'a,b\n1,"multi\nline"\n', { { _line = 2, a = "1", b = "multi\nline" } } },
      { 'a,b\nx"q,z"w,2\n', { { _line = 2, a = "xq,zw", b = "2" } } },
      { "a,b\n\n1,2\n\n", { { _line = 3, a = "1", b = "2" } } },
      { 'a;b\n1;""\n', { { _line = 2, a = "1", b = "" } } },
      { 'a,b\n1,2\n""', { { _line = 2, a = "1", b = "2" } } },
      { "a|b\n1|2\n", { { _line = 2, a = "1", b = "2" } }, "|" },
      { "a%b\n1%2\n", { { _line = 2, a = "1", b = "2" } }, "%" },
    }
    for _, c in ipairs(cases) do
      local rows = assert(csv.parse(c[1], c[3] and { sep = c[3] }))
      assert.same(c[2], rows)
    end
    assert.same({ nil, "unterminated quoted field" }, { csv.parse('a,b\n"open,2\n') })
    assert.same({ nil, "line 2: 1 fields, the header has 2" }, { csv.parse("a,b\n1\n") })
  end)

  it("a wrong header is one line, once, naming the missing columns; exit 2", function()
    local path = write("id,name,price\n1,Ana,10\n2,Bob,20\n3,Eve,30\n")
    local code, out, err = support.sh(RUN .. " --mock scripts/auto_invoice.lua " .. path)
    os.remove(path)
    assert.equals(2, code)
    assert.equals("", out)
    local n = select(2, err:gsub("\n", "\n"))
    assert.equals(2, n, err)      -- "cannot use FILE:" and the one problem
    assert.matches("header: missing columns sale_id, customer_name, rfc, .*; the file has: id, name, price", err)
  end)

  it("prices of 0 and -5 are refused before any request", function()
    local header = SAMPLE:match("^[^\n]+")
    local row = SAMPLE:match("\n([^\n]+)")      -- V-2026-11-0001, unit_price 1500.00
    local zero = row:gsub("1500%.00", "0"):gsub("V%-2026%-11%-0001", "Z1")
    local neg = row:gsub("1500%.00", "-5"):gsub("V%-2026%-11%-0001", "Z2")
    local rows, info = assert(csv.parse(header .. "\n" .. zero .. "\n" .. neg .. "\n"))
    local sales, problems = auto_invoice.sales_from_rows(rows, info.header)
    assert.is_nil(sales)
    assert.same({ "line 2: unit_price: must be greater than 0, got 0",
      "line 3: unit_price: must be greater than 0, got -5" }, problems)
  end)
end)

describe("workflow options", function()
  it("an unknown key is an error naming it and the known ones", function()
    local ok, err = pcall(auto_invoice.from_payments, {}, { since = 1, payments = {} })
    assert.is_false(ok)
    assert.matches("auto_invoice.from_payments: unknown option payments %(known: concurrency, limit, since, "
      .. "status, team, tz, until%)", err)
    local ok2, err2 = pcall(auto_invoice.run, {}, {}, { concurency = 4 })
    assert.is_false(ok2)
    assert.matches("auto_invoice.run: unknown option concurency", err2)
    local ok3, err3 = pcall(require("gigstack.workflows.month_end").run, {}, { month = "2026-11", out = "x" })
    assert.is_false(ok3)
    assert.matches("month_end.run: unknown option out", err3)
    local ok4, err4 = pcall(require("gigstack.workflows.split_billing").run, {}, {}, { mod = "split" })
    assert.is_false(ok4)
    assert.matches("split_billing.run: unknown option mod", err4)
  end)

  it("from_payments invoices only payments created in [since, until]", function()
    support.with_mock(function(gs, server)
      -- three paid payments without invoice, created "now" by the emulator's clock
      local now = 1764590400            -- 2025-12-01T12:00:00Z = 06:00 in Mexico City
      server.emulator.store.clock = function() return now end
      for i = 1, 3 do
        check(gs.payments:register{ client = { legal_name = "CLIENTE SA", tax_id = "SAT970701NN3",
          tax_system = "601", address = { zip = "01000" },
          search = { on_key = "tax_id", on_value = "SAT970701NN3", auto_create = true } },
          items = { { description = "Servicio", quantity = 1, unit_price = 100, product_key = "81111500",
            unit_key = "E48", taxes = { { type = "IVA", rate = 0.16, factor = "Tasa" } } } },
          automation_type = "none", payment_form = "03", idempotency_key = "p" .. i })
      end
      -- yesterday in Mexico City (2025-11-30) holds none of them
      local y = auto_invoice.from_payments(gs, { since = "2025-11-30", ["until"] = "2025-11-30" })
      assert.same({ 0, 0, 0 }, { y.invoiced, y.skipped, #y.failures })
      -- 2025-12-01T11:59:59Z is one second before them: still none
      local before = auto_invoice.from_payments(gs, { ["until"] = now - 1 })
      assert.equals(0, before.invoiced)
      -- limit 2 of today's three, then the rest
      local first = auto_invoice.from_payments(gs, { since = "2025-12-01", ["until"] = "2025-12-01", limit = 2 })
      assert.same({ 2, 0 }, { first.invoiced, #first.failures })
      local rest = auto_invoice.from_payments(gs, { since = now })
      assert.same({ 1, 0 }, { rest.invoiced, #rest.failures })
      local bad_ok, bad = pcall(auto_invoice.from_payments, gs, { since = "yesterday" })
      assert.is_false(bad_ok)
      assert.matches("since: must be unix seconds", bad)
    end)
  end)
end)
