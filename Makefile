# gigstack-lua: `make` builds, `make demo` runs the auto-invoice workflow
# against the embedded emulator, `make test` runs the suite, `make check`
# runs it under ASan+UBSan and the e2e run under valgrind, `make install`
# installs the runner, the Lua modules, the C library (header, static and
# shared library, gigstack.pc), the man page and the examples.
#
# Compiler flags come from pkg-config; the variables LuaRocks passes
# (LUA_INCDIR, CURL_INCDIR, LIBUV_INCDIR, SQLITE_INCDIR, PQ_INCDIR, LLHTTP_INCDIR and
# their *_LIBDIR) take precedence, and XXX_CFLAGS / XXX_LIBS given on the
# command line override both. Only `make deps` runs apt-get (Debian).

# The one version source: GS_VERSION in the public header.
VERSION  := $(shell sed -n 's/^\#define GS_VERSION "\(.*\)"/\1/p' include/gigstack.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))

CC       ?= cc
PKG_CONFIG ?= pkg-config
PREFIX   ?= /usr/local
BUILD    ?= build
LUA      ?= lua5.4
BINDIR   ?= $(PREFIX)/bin
LUADIR   ?= $(PREFIX)/share/lua/5.4
CMODDIR  ?= $(PREFIX)/lib/lua/5.4
LIBDIR   ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR   ?= $(PREFIX)/share/man
EXAMPLEDIR ?= $(PREFIX)/share/gigstack/examples
DOCDIR   ?= $(PREFIX)/share/doc/gigstack

UNAME_S  := $(shell uname -s)

pc_ok     = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo $(1))
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
pc_var    = $(shell $(PKG_CONFIG) --variable=$(2) $(1) 2>/dev/null)

# ---- Lua 5.4: headers for everything, the library only for gigstack-run
# (the C module takes the symbols from the host interpreter).
ifndef LUA_CFLAGS
  ifneq ($(LUA_INCDIR),)
    LUA_CFLAGS := -I$(LUA_INCDIR)
  else
    LUA_PC := $(firstword $(foreach m,lua5.4 lua-5.4 lua54 lua,\
      $(if $(filter 5.4%,$(shell $(PKG_CONFIG) --modversion $(m) 2>/dev/null)),$(m))))
    LUA_CFLAGS := $(if $(LUA_PC),$(call pc_cflags,$(LUA_PC)),-I/usr/include/lua5.4)
  endif
endif
ifndef LUA_LIBS
  ifneq ($(LUA_LIBDIR),)
    # LuaRocks names the library file (liblua5.4.a, liblua.so...): link by its stem
    LUA_LIBS := -L$(LUA_LIBDIR) -l$(patsubst lib%,%,$(basename $(or $(LUALIB),liblua5.4.so)))
  else
    LUA_PC ?= $(firstword $(foreach m,lua5.4 lua-5.4 lua54 lua,\
      $(if $(filter 5.4%,$(shell $(PKG_CONFIG) --modversion $(m) 2>/dev/null)),$(m))))
    LUA_LIBS := $(if $(LUA_PC),$(call pc_libs,$(LUA_PC)),-llua5.4)
  endif
endif

# ---- libcurl, libuv, sqlite3: LuaRocks dirs, else pkg-config, else plain -l
define find_lib
ifndef $(1)_CFLAGS
  ifneq ($$($(1)_INCDIR),)
    $(1)_CFLAGS := -I$$($(1)_INCDIR)
  else
    $(1)_CFLAGS := $$(call pc_cflags,$(2))
  endif
endif
ifndef $(1)_LIBS
  ifneq ($$($(1)_LIBDIR),)
    $(1)_LIBS := -L$$($(1)_LIBDIR) -l$(3)
  else ifneq ($$(call pc_ok,$(2)),)
    $(1)_LIBS := $$(call pc_libs,$(2))
  else
    $(1)_LIBS := -l$(3)
  endif
endif
endef
$(eval $(call find_lib,CURL,libcurl,curl))
$(eval $(call find_lib,LIBUV,libuv,uv))
$(eval $(call find_lib,SQLITE,sqlite3,sqlite3))
$(eval $(call find_lib,CRYPTO,libcrypto,crypto))
$(eval $(call find_lib,PQ,libpq,pq))

# ---- llhttp: the packaged library (Fedora, Arch, Alpine, Homebrew ship
# libllhttp with a .pc) when present, else the sources Debian's node-llhttp
# puts in /usr/share/llhttp, compiled in.
LLHTTP_SRCDIR ?= /usr/share/llhttp
LLHTTP_SRCINC ?= /usr/share/include/llhttp
ifndef LLHTTP_LIBS
  ifneq ($(LLHTTP_INCDIR),)
    LLHTTP_CFLAGS ?= -I$(LLHTTP_INCDIR)
    LLHTTP_LIBS := $(if $(LLHTTP_LIBDIR),-L$(LLHTTP_LIBDIR)) -lllhttp
  else ifneq ($(call pc_ok,libllhttp),)
    LLHTTP_CFLAGS ?= $(call pc_cflags,libllhttp)
    LLHTTP_LIBS := $(call pc_libs,libllhttp)
    LLHTTP_PC := libllhttp
  else
    LLHTTP_BUNDLED := 1
    LLHTTP_CFLAGS ?= -I$(LLHTTP_SRCINC)
    LLHTTP_LIBS :=
  endif
endif

# ---- libcurl, libpq and libcrypto are opened on first use (src/lazy.h), by the
# soname of the library found here: LuaRocks dir, the compiler's search
# path, else pkg-config's libdir (else the soname compiled in)
ifeq ($(UNAME_S),Darwin)
# the install name (an absolute path: keg-only Homebrew libraries are not
# on dyld's search path), as the linker would have recorded it
soname_of = $(shell f='$(firstword $(wildcard $(2)/lib$(1).dylib) \
    $(wildcard $(call pc_var,$(3),libdir)/lib$(1).dylib))'; \
    [ -n "$$f" ] && otool -D "$$f" 2>/dev/null | sed -n 2p)
else
soname_of = $(shell f='$(firstword $(wildcard $(2)/lib$(1).so) \
    $(shell $(CC) -print-file-name=lib$(1).so 2>/dev/null | grep /) \
    $(wildcard $(call pc_var,$(3),libdir)/lib$(1).so))'; \
    [ -n "$$f" ] && objdump -p "$$f" 2>/dev/null | awk '/SONAME/ {print $$2}')
endif
ifndef CURL_SONAME
  CURL_SONAME := $(call soname_of,curl,$(CURL_LIBDIR),libcurl)
endif
ifndef PQ_SONAME
  PQ_SONAME := $(call soname_of,pq,$(PQ_LIBDIR),libpq)
endif
ifndef CRYPTO_SONAME
  CRYPTO_SONAME := $(call soname_of,crypto,$(CRYPTO_LIBDIR),libcrypto)
endif

OPT      ?= -O2 -g
SAN      ?=
WERROR   ?=
CFLAGS_ALL = -std=gnu11 -Wall -Wextra $(WERROR) $(OPT) $(SAN) -fPIC -Iinclude \
             $(LUA_CFLAGS) $(LLHTTP_CFLAGS) $(CURL_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS) $(PQ_CFLAGS) $(CFLAGS)
# What libgigstack itself links; the Lua binding adds sqlite3 (the
# journal). libcurl (the engine), libpq (the PostgreSQL journal) and
# libcrypto (the emulator's CFDI seals) are not linked but opened on
# first use, by the sonames found above: see src/lazy.h.
LIB_LIBS = $(LIBUV_LIBS) $(LLHTTP_LIBS) $(if $(filter Linux,$(UNAME_S)),-ldl)
LIBS     = $(LIB_LIBS) $(SQLITE_LIBS)

ifeq ($(UNAME_S),Darwin)
  LIBFLAG   ?= -bundle -undefined dynamic_lookup
  EXPORT_DYNAMIC =
  SHLIB     = libgigstack.$(VERSION).dylib
  SHLIB_SO  = libgigstack.$(SOMAJOR).dylib
  SHLIB_DEV = libgigstack.dylib
  SHLIB_FLAGS = -dynamiclib -install_name $(LIBDIR)/$(SHLIB_SO) \
                -Wl,-exported_symbols_list,$(BUILD)/gigstack.exp
else
  LIBFLAG   ?= -shared
  EXPORT_DYNAMIC = -Wl,-E
  SHLIB     = libgigstack.so.$(VERSION)
  SHLIB_SO  = libgigstack.so.$(SOMAJOR)
  SHLIB_DEV = libgigstack.so
  SHLIB_FLAGS = -shared -Wl,-soname,$(SHLIB_SO) -Wl,--version-script,$(BUILD)/gigstack.map
endif

# Debian packages the build, demo, tests and docs need (postgresql: the
# journal specs start their own throwaway cluster); `make deps`
# installs whichever are missing (apt-get, as root or through sudo).
DEB_PKGS = lua5.4 liblua5.4-dev lua-cjson libuv1-dev libcurl4-openssl-dev \
           node-llhttp libsqlite3-dev lua-busted lua-check lua-ldoc curl valgrind openssl \
           pkg-config man-db libssl-dev libxml2-utils xsltproc libpq-dev postgresql
# and what `make release-check` adds (second compiler, LuaRocks)
DEB_RELEASE_PKGS = clang luarocks
# and the peers `make bench` measures against, plus its chart and timer
DEB_BENCH_PKGS = nginx wrk curl nodejs python3-aiohttp gnuplot-nox hyperfine

LLHTTP_OBJ = $(if $(LLHTTP_BUNDLED),$(BUILD)/obj/llhttp.o $(BUILD)/obj/llhttp_api.o $(BUILD)/obj/llhttp_http.o)
LLHTTP_SRC = $(LLHTTP_SRCDIR)/llhttp.c $(LLHTTP_SRCDIR)/api.c $(LLHTTP_SRCDIR)/http.c
ENGINE_OBJ = $(BUILD)/obj/engine.o $(BUILD)/obj/curl_lazy.o $(BUILD)/obj/lazy.o $(BUILD)/obj/server.o $(LLHTTP_OBJ)

.PHONY: all deps release-deps demo test suite check lint clean install install-rock \
        install-lua install-lib install-data uninstall docs werror release-check fuzz fuzz-deps \
        coverage hardening bench bench-deps bench-journal bench-floor

all: $(BUILD)/gigstack-run $(BUILD)/gigstack/core.so $(BUILD)/libgigstack.a \
     $(BUILD)/$(SHLIB) $(BUILD)/gigstack.pc

# Debian only: the other systems' package names are in the README.
HAVE_APT = command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1

deps:
	@$(HAVE_APT) || { echo "make deps: apt-get/dpkg not found; install the packages listed in README.md (Install)"; exit 0; }; \
	missing=""; for p in $(DEB_PKGS) $(EXTRA_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

release-deps:
	@$(MAKE) --no-print-directory deps EXTRA_PKGS="$(DEB_RELEASE_PKGS)"

bench-deps:
	@$(MAKE) --no-print-directory deps EXTRA_PKGS="$(DEB_BENCH_PKGS)"

$(BUILD)/obj/%.o: src/%.c include/gigstack.h src/core_internal.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/curl_lazy.o: src/curl_lazy.c src/curl_lazy.h src/lazy.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) $(if $(CURL_SONAME),-DGS_CURL_SONAME='"$(CURL_SONAME)"') -c $< -o $@
$(BUILD)/obj/pq_lazy.o: src/pq_lazy.c src/pq_lazy.h src/lazy.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) $(if $(PQ_SONAME),-DGS_PQ_SONAME='"$(PQ_SONAME)"') -c $< -o $@
$(BUILD)/obj/engine.o $(BUILD)/obj/lgigstack.o: src/curl_lazy.h
$(BUILD)/obj/crypto_lazy.o: src/crypto_lazy.c src/crypto_lazy.h src/lazy.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) $(if $(CRYPTO_SONAME),-DGS_CRYPTO_SONAME='"$(CRYPTO_SONAME)"') -c $< -o $@
$(BUILD)/obj/lpg.o: src/pq_lazy.h
$(BUILD)/obj/lcrypto.o: src/crypto_lazy.h
$(BUILD)/obj/lazy.o: src/lazy.h

# third-party code: compiled without our warning flags
$(BUILD)/obj/llhttp.o: $(LLHTTP_SRCDIR)/llhttp.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@
$(BUILD)/obj/llhttp_api.o: $(LLHTTP_SRCDIR)/api.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@
$(BUILD)/obj/llhttp_http.o: $(LLHTTP_SRCDIR)/http.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@

$(LLHTTP_SRCDIR)/%.c:
	@echo "llhttp not found: no libllhttp pkg-config file and no $@."; \
	 echo "Install llhttp (Fedora llhttp-devel, Arch/Homebrew llhttp, Alpine llhttp-dev," \
	      "Debian node-llhttp) or pass LLHTTP_INCDIR=... LLHTTP_LIBDIR=..."; exit 1

$(BUILD)/obj:
	mkdir -p $@ $(BUILD)/gigstack

$(BUILD)/libgigstack.a: $(ENGINE_OBJ)
	rm -f $@ && ar rcs $@ $^

# The shared library exports the public API (gs_*) only.
$(BUILD)/gigstack.map: | $(BUILD)/obj
	printf '{\n  global: gs_*;\n  local: *;\n};\n' > $@
$(BUILD)/gigstack.exp: | $(BUILD)/obj
	echo '_gs_*' > $@

$(BUILD)/$(SHLIB): $(ENGINE_OBJ) $(BUILD)/gigstack.map $(BUILD)/gigstack.exp
	$(CC) $(SAN) $(SHLIB_FLAGS) -o $@ $(ENGINE_OBJ) $(LIB_LIBS) $(LDFLAGS)
	ln -sf $(SHLIB) $(BUILD)/$(SHLIB_SO)
	ln -sf $(SHLIB_SO) $(BUILD)/$(SHLIB_DEV)

# The C library's pkg-config file; rebuilt when PREFIX/LIBDIR change.
$(BUILD)/gigstack.pc: include/gigstack.h FORCE | $(BUILD)/obj
	@{ echo 'prefix=$(PREFIX)'; echo 'libdir=$(LIBDIR)'; echo 'includedir=$(INCLUDEDIR)'; echo; \
	  echo 'Name: gigstack'; \
	  echo 'Description: Async HTTP client engine (libcurl on libuv) and HTTP/1.1 server of gigstack-lua'; \
	  echo 'URL: https://github.com/gigstack-lua/gigstack-lua'; \
	  echo 'Version: $(VERSION)'; \
	  echo 'Requires: libuv'; \
	  echo 'Requires.private: $(LLHTTP_PC)'; \
	  echo 'Libs: -L$${libdir} -lgigstack'; \
	  echo 'Libs.private: $(if $(LLHTTP_PC),,$(LLHTTP_LIBS)) $(if $(filter Linux,$(UNAME_S)),-ldl)'; \
	  echo 'Cflags: -I$${includedir}'; } > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

# The Lua module does not link liblua: the host interpreter provides it.
# the Lua binding gigstack.core: engine and server, journal (SQLite, PostgreSQL), seals, JSON fix-ups
BINDING_OBJ = $(BUILD)/obj/lgigstack.o $(BUILD)/obj/ljournal.o $(BUILD)/obj/lpg.o $(BUILD)/obj/pq_lazy.o $(BUILD)/obj/lcrypto.o $(BUILD)/obj/crypto_lazy.o $(BUILD)/obj/ljson.o $(BUILD)/obj/lutf8.o $(BUILD)/obj/lcg.o
$(BUILD)/gigstack/core.so: $(BINDING_OBJ) $(BUILD)/libgigstack.a
	$(CC) $(SAN) $(LIBFLAG) -o $@ $(BINDING_OBJ) $(BUILD)/libgigstack.a $(LIBS) $(LDFLAGS)

# -Wl,-E exports the Lua API so `require "cjson"` (a .so) resolves it.
$(BUILD)/gigstack-run: $(BUILD)/obj/main.o $(BINDING_OBJ) $(BUILD)/libgigstack.a
	$(CC) $(SAN) $(EXPORT_DYNAMIC) -o $@ $^ $(LUA_LIBS) $(LIBS) -lm $(if $(filter Linux,$(UNAME_S)),-ldl) $(LDFLAGS)

# main.o bakes in LUADIR: rebuilt whenever LUADIR changes
$(BUILD)/luadir: FORCE | $(BUILD)/obj
	@echo '$(LUADIR)' | cmp -s - $@ || echo '$(LUADIR)' > $@

$(BUILD)/obj/main.o: src/main.c include/gigstack.h $(BUILD)/luadir | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -DGS_LUADIR='"$(LUADIR)"' -c $< -o $@

FORCE:

# apt-get only where it exists (Debian); elsewhere install the packages first
demo:
	@if $(HAVE_APT); then $(MAKE) --no-print-directory deps; fi
	@$(MAKE) --no-print-directory all
	@echo "== auto-invoicing: 60 sales -> payments -> PUE invoices (embedded emulator)"
	$(BUILD)/gigstack-run --mock scripts/auto_invoice.lua scripts/data/sales.csv
	@echo "== split billing: 40 marketplace orders, settlement per vendor"
	$(BUILD)/gigstack-run --mock scripts/split_billing.lua scripts/data/orders.csv

test:
	@if $(HAVE_APT); then $(MAKE) --no-print-directory deps; fi
	@$(MAKE) --no-print-directory suite

# Benchmarks (never part of the suite): claims per second of the
# PostgreSQL journal at 1, 4 and 16 runner processes.
bench-journal: all
	@sh bench/journal_claims.sh $(BENCH_CLAIMS) $(BENCH_RUNNERS)

# the suite without installing anything (`luarocks test` runs this)
suite: all lint
	@sh spec/run.sh

lint:
	@if command -v luacheck >/dev/null; then luacheck -q lua scripts spec bench || exit 1; \
	else echo "luacheck not installed (Debian: lua-check)"; fi

# ASan+UBSan build of the module, the suite run under it (the sanitizer
# runtime is preloaded into lua5.4), then valgrind on the e2e run.
check: deps
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	@LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  GIGSTACK_BUILD=build/asan sh spec/run.sh
	$(MAKE) all
	@sh scripts/dev/valgrind_e2e.sh $(BUILD)/gigstack-run

# API reference from the --- comments (LDoc, Debian lua-ldoc). Any LDoc
# warning fails the target.
docs:
	@command -v ldoc >/dev/null || { echo "ldoc not installed (Debian: lua-ldoc)"; exit 1; }
	@out=$$(ldoc . 2>&1); status=$$?; \
	 out=$$(printf '%s\n' "$$out" | grep -v -e '^reading configuration from' -e '^output written to'); \
	 if [ -n "$$out" ] || [ $$status -ne 0 ]; then echo "$$out"; echo "make docs: LDoc warnings"; exit 1; fi; \
	 echo "API reference in $(BUILD)/docs/index.html"

# The C sources with gcc and with clang, -Wall -Wextra -Werror, each in its
# own build tree.
WERROR_CCS ?= gcc clang
werror:
	@for c in $(WERROR_CCS); do \
	  command -v $$c >/dev/null || { echo "werror: $$c not installed (make release-deps)"; exit 1; }; \
	  echo "== $$c -Wall -Wextra -Werror"; rm -rf build/werror-$$c; \
	  $(MAKE) --no-print-directory CC=$$c BUILD=build/werror-$$c WERROR=-Werror all >/dev/null || exit 1; \
	  echo "   ok: build/werror-$$c"; \
	done

# What a release needs beyond the suite: both compilers under -Werror,
# the docs without warnings, the man page, the rockspecs, and a LuaRocks
# install into a scratch tree whose runner runs an installed example.
release-check: werror docs
	@man -l man/gigstack-run.1 >/dev/null 2>&1 || { echo "man page does not render"; exit 1; }
	@MANWIDTH=80 man -l man/gigstack-run.1 2>&1 | grep -q "EXIT STATUS" || { echo "man page has no EXIT STATUS"; exit 1; }
	@for r in rockspec/*.rockspec; do luarocks lint $$r || exit 1; echo "luarocks lint $$r: ok"; done
	sh scripts/dev/rock_check.sh

# Line coverage of the suite: C with gcov (lines and branches of src/),
# Lua with scripts/dev/lua_coverage.lua (a line hook loaded through
# LUA_INIT by busted's lua5.4 and by every gigstack-run it starts).
COV = build/cov
coverage: deps
	$(MAKE) BUILD=$(COV) OPT="-O0 -g --coverage" SAN="--coverage" all
	rm -rf $(COV)/lua && mkdir -p $(COV)/lua && find $(COV)/obj -name '*.gcda' -delete
	-LUA_INIT="@$(CURDIR)/scripts/dev/lua_coverage.lua" GIGSTACK_LUA_COVERAGE=$(CURDIR)/$(COV)/lua \
	  GIGSTACK_BUILD=$(COV) sh spec/run.sh | tail -1
	@gcov -b -n -o $(COV)/obj src/engine.c src/server.c src/lgigstack.c src/ljournal.c src/lcrypto.c src/ljson.c src/main.c 2>/dev/null | \
	  awk -F'[:% ]+' '/^File .src/{f=$$2} \
	    /^Lines executed/ && f {l+=$$3*$$5/100; L+=$$5} /^Branches executed/ && f {B+=$$5} \
	    /^Taken at least once/ && f {t+=$$5*$$7/100; f=""} \
	    END {printf "C lines: %.1f%% (%d of %d); C branches taken: %.1f%% (%d of %d)\n", 100*l/L, l+0.5, L, 100*t/B, t+0.5, B}'
	@lua5.4 scripts/dev/lua_coverage.lua report $(COV)/lua lua | tail -1

# The HTTP server against full-size attacks (slowloris x 900 under
# ulimit -n 1024, 200 x 8,000 headers, 100-continue), the client's peak
# RSS for a 64 MiB body and the emulator's throughput under wrk; prints
# figures. Loopback only, bounded, about a minute. wrk is needed here only.
hardening: deps all
	@command -v wrk >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	@bash bench/hardening.sh $(BUILD)

install: install-lua install-lib install-data

install-rock: install-lua install-data

install-lua: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CMODDIR)/gigstack $(DESTDIR)$(LUADIR)
	install -m 755 $(BUILD)/gigstack-run $(DESTDIR)$(BINDIR)/gigstack-run
	install -m 755 $(BUILD)/gigstack/core.so $(DESTDIR)$(CMODDIR)/gigstack/core.so
	cd lua && find gigstack -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(LUADIR)/{} \;

install-lib: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/gigstack.h $(DESTDIR)$(INCLUDEDIR)/gigstack.h
	install -m 644 $(BUILD)/libgigstack.a $(DESTDIR)$(LIBDIR)/libgigstack.a
	install -m 755 $(BUILD)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB)
	ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_SO)
	ln -sf $(SHLIB_SO) $(DESTDIR)$(LIBDIR)/$(SHLIB_DEV)
	install -m 644 $(BUILD)/gigstack.pc $(DESTDIR)$(PKGCONFIGDIR)/gigstack.pc

install-data:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(EXAMPLEDIR)/data $(DESTDIR)$(EXAMPLEDIR)/c $(DESTDIR)$(DOCDIR)
	install -m 644 man/gigstack-run.1 $(DESTDIR)$(MANDIR)/man1/gigstack-run.1
	install -m 644 scripts/*.lua $(DESTDIR)$(EXAMPLEDIR)/
	install -m 644 scripts/data/* $(DESTDIR)$(EXAMPLEDIR)/data/
	install -m 644 examples/c/*.c examples/c/Makefile $(DESTDIR)$(EXAMPLEDIR)/c/
	install -m 644 README.md CHANGELOG.md LICENSE $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gigstack-run $(DESTDIR)$(CMODDIR)/gigstack/core.so
	rm -rf $(DESTDIR)$(LUADIR)/gigstack
	rm -f $(DESTDIR)$(INCLUDEDIR)/gigstack.h $(DESTDIR)$(LIBDIR)/libgigstack.a \
	      $(DESTDIR)$(LIBDIR)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_SO) $(DESTDIR)$(LIBDIR)/$(SHLIB_DEV) \
	      $(DESTDIR)$(PKGCONFIGDIR)/gigstack.pc $(DESTDIR)$(MANDIR)/man1/gigstack-run.1
	rm -rf $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build

# Performance against the peers (issue 12), on loopback, about 3 minutes on
# 2 cores: prints a table with the targets (PASS/FAIL, never a failed
# build), writes $(BUILD)/bench/results.json and throughput.png.
# BENCH_SCALE=0.25 for a quick look (request counts and durations).
BENCH_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" \
            GIGSTACK_RUN="$(BUILD)/gigstack-run" BENCH_OUT="$(BUILD)/bench"
bench: bench-deps all bench-floor
	@trap '$(BENCH_ENV) $(LUA) bench/run.lua --cleanup; exit 130' INT TERM; \
	 $(BENCH_ENV) $(LUA) bench/run.lua
	@$(MAKE) --no-print-directory bench-journal

# The floor programs: libcurl, and libcurl + lua-cjson, with nothing of
# ours in between (what the targets they bound can reach at best).
FLOOR_BIN = $(BUILD)/bench/floor/libcurl_get $(BUILD)/bench/floor/libcurl_pending
bench-floor: $(FLOOR_BIN)
$(BUILD)/bench/floor/libcurl_get: bench/floor/libcurl_get.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra $(CURL_CFLAGS) $(LUA_CFLAGS) -o $@ $< $(CURL_LIBS) $(LUA_LIBS) -lm -ldl
$(BUILD)/bench/floor/libcurl_pending: bench/floor/libcurl_pending.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# libFuzzer targets (clang): the server's request parsing over loopback,
# and the SDK's response-to-Lua path. FUZZ_SECONDS each; corpora kept in
# fuzz/corpus/<target>.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
             -Iinclude $(LUA_CFLAGS) $(LLHTTP_CFLAGS) $(CURL_CFLAGS) $(LIBUV_CFLAGS)
FUZZ_LIBSRC = src/engine.c src/server.c $(if $(LLHTTP_BUNDLED),$(LLHTTP_SRC))

fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null && [ -n "$$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] || { \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; }

$(BUILD)/fuzz/server_fuzz: fuzz/server_fuzz.c $(FUZZ_LIBSRC) include/gigstack.h
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -w -o $@ fuzz/server_fuzz.c $(FUZZ_LIBSRC) $(LIBS)

$(BUILD)/fuzz/response_fuzz: fuzz/response_fuzz.c src/lgigstack.c src/ljournal.c src/lpg.c src/lcrypto.c src/ljson.c $(FUZZ_LIBSRC) include/gigstack.h
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -w -o $@ fuzz/response_fuzz.c src/lgigstack.c src/ljournal.c src/lpg.c src/lcrypto.c src/ljson.c $(FUZZ_LIBSRC) $(LUA_LIBS) $(LIBS) -lm -ldl

fuzz: deps fuzz-deps $(BUILD)/fuzz/server_fuzz $(BUILD)/fuzz/response_fuzz
	@for t in server response; do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -print_final_stats=1 fuzz/corpus/$$t 2>&1 | \
	    grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|ERROR|crash-|Done" || exit 1; \
	done
