-- gigstack.fiscal.rfc against the test vectors of cfdi-domain.md §1.5.
local rfc = require "gigstack.fiscal.rfc"

describe("rfc", function()
  it("computes the check digit of every documented vector", function()
    for _, v in ipairs{ "CAMA911215CJ0", "COSC8001137NA", "SAT970701NN3", "DIM8701081LA",
        "SORC591116FJ6", "A&A050908GT0", "AÑÑ801231JK0", "GODE561231GR8", "MAB9307148T4",
        "EKU9003173C9" } do
      assert.equals(v:sub(-1), rfc.check_digit(v), v)
      local info = assert(rfc.parse(v))
      assert.same({}, info.warnings, v)
    end
    assert.equals("5", rfc.check_digit("VACE460910SX6"))
    assert.equals("4", rfc.check_digit("XAXX010101000"))
    assert.equals("1", rfc.check_digit("AAA010101AAA"))
  end)

  it("accepts a wrong check digit with a warning, as real RFCs have them", function()
    local info = assert(rfc.parse("COSC8001137N9"))
    assert.equals("fisica", info.type)
    assert.matches("check digit is 9, expected A", info.warnings[1])
    assert.equals(1, #assert(rfc.parse("VACE460910SX6")).warnings)
  end)

  it("tells persona física (13) from moral (12) and whitelists the generic RFCs", function()
    assert.equals("fisica", rfc.persona("CAMA911215CJ0"))
    assert.equals("moral", rfc.persona("SAT970701NN3"))
    local generic = assert(rfc.parse("XAXX010101000"))
    assert.same({ "generic", true, false }, { generic.type, generic.generic, generic.foreign })
    assert.is_true(assert(rfc.parse("XEXX010101000")).foreign)
  end)

  it("handles Ñ and & and normalises case, spaces and dashes", function()
    assert.equals("moral", rfc.persona("AÑÑ801231JK0"))
    assert.equals("moral", rfc.persona("añÑ801231jk0"))
    assert.equals("moral", rfc.persona("A&A050908GT0"))
    assert.equals("CAMA911215CJ0", rfc.normalise(" cama-911215 cj0 "))
  end)

  it("rejects impossible dates (20YY leap rule) and malformed RFCs", function()
    assert.is_not_nil(rfc.parse("AAAA000229AAA"))
    for _, bad in ipairs{ "AAAA010229AAA", "AAAA010132AAA", "AAAA011301AAA", "ÁAAA010101AAA",
        "AAAA010101AA", "AA010101AAA", "PEGJ800101ABC", "", 12 } do
      local info, err = rfc.parse(bad)
      assert.is_nil(info, tostring(bad))
      assert.is_string(err)
    end
    assert.matches("impossible date", select(2, rfc.parse("AAAA010229AAA")))
  end)
end)
