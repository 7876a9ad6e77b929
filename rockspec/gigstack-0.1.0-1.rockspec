rockspec_format = "3.0"
package = "gigstack"
version = "0.1.0-1"
-- github.com/gigstack-lua/gigstack-lua is a placeholder for the public repository
source = {
  url = "git+https://github.com/gigstack-lua/gigstack-lua.git",
  tag = "v0.1.0",
}
description = {
  summary = "Async Lua 5.4 SDK, runner and emulator for the gigstack API (Mexican CFDI invoicing)",
  detailed = [[
gigstack-lua automates Mexican invoicing (CFDI 4.0) through the gigstack
API. A C core drives HTTP asynchronously (libcurl's multi-socket interface
on libuv), so `require "gigstack"` gives calls that look blocking but
suspend only their task: one script keeps hundreds of requests in flight.
It ships exact decimal money and tax rules, the `gigstack-run` host for
scheduled scripts (cron expressions, --once, --lock, --dry-run, reports,
a SQLite journal, webhooks) and a stateful emulator of the API for
offline development and tests.
]],
  homepage = "https://github.com/gigstack-lua/gigstack-lua",
  issues_url = "https://github.com/gigstack-lua/gigstack-lua/issues",
  license = "MIT",
  labels = { "http", "async", "libuv", "invoicing", "cfdi", "mexico" },
}
dependencies = { "lua >= 5.4", "lua-cjson" }
-- CURL gives no header to look for: Debian puts curl/curl.h in a multiarch
-- directory LuaRocks does not search (the compiler does).
-- llhttp is not listed: Debian 12 packages it only as sources (node-llhttp),
-- which the Makefile compiles in; where llhttp is a library with a .pc
-- (Fedora, Arch, Alpine, Homebrew) the Makefile links it, and
-- LLHTTP_INCDIR=... LLHTTP_LIBDIR=... on the luarocks command line point
-- it elsewhere.
external_dependencies = {
  CURL = { library = "curl" },
  LIBUV = { header = "uv.h", library = "uv" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
  -- the PostgreSQL journal (src/lpg.c); no header: Debian puts libpq-fe.h in
  -- /usr/include/postgresql, which the Makefile finds through pkg-config
  PQ = { library = "pq" },
}
test_dependencies = { "busted" }
-- The Makefile builds the C module and the gigstack-run host; install-rock
-- installs the runner, every lua/gigstack/**.lua (found by directory, so
-- subfolders need no listing), core.so, the man page and the examples.
-- The C library (header, libgigstack.so, gigstack.pc) is `make install`'s.
build = {
  type = "make",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)", LUA_LIBDIR = "$(LUA_LIBDIR)", LUALIB = "$(LUALIB)",
    CURL_INCDIR = "$(CURL_INCDIR)", CURL_LIBDIR = "$(CURL_LIBDIR)",
    LIBUV_INCDIR = "$(LIBUV_INCDIR)", LIBUV_LIBDIR = "$(LIBUV_LIBDIR)",
    SQLITE_INCDIR = "$(SQLITE_INCDIR)", SQLITE_LIBDIR = "$(SQLITE_LIBDIR)",
    PQ_LIBDIR = "$(PQ_LIBDIR)",
    PREFIX = "$(PREFIX)", LUADIR = "$(LUADIR)",
  },
  install_target = "install-rock",
  install_variables = {
    PREFIX = "$(PREFIX)", BINDIR = "$(BINDIR)", LUADIR = "$(LUADIR)", CMODDIR = "$(LIBDIR)",
  },
}
-- the suite on the build tree; never apt-get (that is `make deps`, Debian only)
test = { type = "command", command = "make suite" }
