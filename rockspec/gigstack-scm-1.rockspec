rockspec_format = "3.0"
package = "gigstack"
version = "scm-1"
source = { url = "git+https://example.invalid/gigstack-lua.git" }
description = {
  summary = "Async Lua 5.4 SDK, runner and emulator for the gigstack API (Mexican CFDI invoicing)",
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5", "lua-cjson" }
external_dependencies = {
  CURL = { library = "curl" },          -- Debian multiarch: header found by gcc
  LIBUV = { header = "uv.h", library = "uv" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },   -- CFDI seals (src/lcrypto.c)
}
test_dependencies = { "busted" }
-- One Makefile builds the C module and the gigstack-run host.
build = {
  type = "make",
  build_variables = { CFLAGS = "$(CFLAGS)", LUA_INC = "$(LUA_INCDIR)" },
  install_variables = {
    PREFIX = "$(PREFIX)", BINDIR = "$(BINDIR)", LUADIR = "$(LUADIR)", CMODDIR = "$(LIBDIR)",
  },
}
test = { type = "command", command = "make test" }
