# gigstack-lua: `make` builds, `make demo` runs the auto-invoice workflow
# against the embedded emulator, `make test` runs the suite, `make check`
# runs it under ASan+UBSan and the e2e run under valgrind.

CC       ?= gcc
PREFIX   ?= /usr/local
BUILD    ?= build
LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
LLHTTP   ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
CURL_INC ?= /usr/include/x86_64-linux-gnu
LUADIR   ?= $(PREFIX)/share/lua/5.4
CMODDIR  ?= $(PREFIX)/lib/lua/5.4
BINDIR   ?= $(PREFIX)/bin

OPT      ?= -O2 -g
SAN      ?=
CFLAGS_ALL = -std=gnu11 -Wall -Wextra -Wno-unused-parameter $(OPT) $(SAN) -fPIC \
             -Iinclude -I$(LUA_INC) -I$(LLHTTP_INC) -I$(CURL_INC) $(CFLAGS)
LIBS     = -lcurl -luv -lsqlite3
LUALIB   = -llua5.4

# Debian packages the build, demo and tests need; `make deps` installs
# whichever are missing (apt-get, as root or through sudo).
DEB_PKGS = lua5.4 liblua5.4-dev lua-cjson libuv1-dev libcurl4-openssl-dev \
           node-llhttp libsqlite3-dev lua-busted lua-check curl valgrind openssl pkg-config

ENGINE_SRC = src/engine.c src/server.c
LLHTTP_SRC = $(LLHTTP)/llhttp.c $(LLHTTP)/api.c $(LLHTTP)/http.c
ENGINE_OBJ = $(BUILD)/obj/engine.o $(BUILD)/obj/server.o \
             $(BUILD)/obj/llhttp.o $(BUILD)/obj/llhttp_api.o $(BUILD)/obj/llhttp_http.o

.PHONY: all deps demo test check lint clean install uninstall fuzz fuzz-deps hardening

all: $(BUILD)/gigstack-run $(BUILD)/gigstack/core.so $(BUILD)/libgigstack.a

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/obj/%.o: src/%.c include/gigstack.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/llhttp.o: $(LLHTTP)/llhttp.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@
$(BUILD)/obj/llhttp_api.o: $(LLHTTP)/api.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@
$(BUILD)/obj/llhttp_http.o: $(LLHTTP)/http.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@ $(BUILD)/gigstack

$(BUILD)/libgigstack.a: $(ENGINE_OBJ)
	rm -f $@ && ar rcs $@ $^

# The Lua module does not link liblua: the host interpreter provides it.
$(BUILD)/gigstack/core.so: $(BUILD)/obj/lgigstack.o $(BUILD)/obj/ljournal.o $(BUILD)/libgigstack.a
	$(CC) $(SAN) -shared -o $@ $(BUILD)/obj/lgigstack.o $(BUILD)/obj/ljournal.o $(BUILD)/libgigstack.a $(LIBS)

# -Wl,-E exports the Lua API so `require "cjson"` (a .so) resolves it.
$(BUILD)/gigstack-run: $(BUILD)/obj/main.o $(BUILD)/obj/lgigstack.o $(BUILD)/obj/ljournal.o $(BUILD)/libgigstack.a
	$(CC) $(SAN) -Wl,-E -o $@ $^ $(LUALIB) $(LIBS) -lm -ldl

# main.o bakes in LUADIR: rebuilt whenever LUADIR changes
$(BUILD)/luadir: FORCE | $(BUILD)/obj
	@echo '$(LUADIR)' | cmp -s - $@ || echo '$(LUADIR)' > $@

$(BUILD)/obj/main.o: src/main.c include/gigstack.h $(BUILD)/luadir | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -DGS_LUADIR='"$(LUADIR)"' -c $< -o $@

FORCE:

demo: deps all
	@echo "== auto-invoicing: 60 sales -> payments -> PUE invoices (embedded emulator)"
	$(BUILD)/gigstack-run --mock scripts/auto_invoice.lua scripts/data/sales.csv
	@echo "== split billing: 40 marketplace orders, settlement per vendor"
	$(BUILD)/gigstack-run --mock scripts/split_billing.lua scripts/data/orders.csv

test: deps all lint
	@sh spec/run.sh

lint:
	@if command -v luacheck >/dev/null; then luacheck -q lua scripts spec || exit 1; \
	else echo "luacheck not installed (apt-get install lua-check)"; fi

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

# The HTTP server against full-size attacks (slowloris x 900 under
# ulimit -n 1024, 200 x 8,000 headers, 100-continue), the client's peak
# RSS for a 64 MiB body and the emulator's throughput under wrk; prints
# figures. Loopback only, bounded, about a minute. wrk is needed here only.
hardening: deps all
	@command -v wrk >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	@bash bench/hardening.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CMODDIR)/gigstack $(DESTDIR)$(LUADIR)
	install -m 755 $(BUILD)/gigstack-run $(DESTDIR)$(BINDIR)/gigstack-run
	install -m 755 $(BUILD)/gigstack/core.so $(DESTDIR)$(CMODDIR)/gigstack/core.so
	cd lua && find gigstack -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(LUADIR)/{} \;

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gigstack-run $(DESTDIR)$(CMODDIR)/gigstack/core.so
	rm -rf $(DESTDIR)$(LUADIR)/gigstack

clean:
	rm -rf build

# libFuzzer targets (clang): the server's request parsing over loopback,
# and the SDK's response-to-Lua path. FUZZ_SECONDS each; corpora kept in
# fuzz/corpus/<target>.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
             -Iinclude -I$(LUA_INC) -I$(LLHTTP_INC) -I$(CURL_INC)
FUZZ_LIBSRC = src/engine.c src/server.c $(LLHTTP_SRC)

fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null && [ -n "$$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] || { \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; }

$(BUILD)/fuzz/server_fuzz: fuzz/server_fuzz.c $(FUZZ_LIBSRC) include/gigstack.h
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -w -o $@ fuzz/server_fuzz.c $(FUZZ_LIBSRC) $(LIBS)

$(BUILD)/fuzz/response_fuzz: fuzz/response_fuzz.c src/lgigstack.c $(FUZZ_LIBSRC) include/gigstack.h
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -w -o $@ fuzz/response_fuzz.c src/lgigstack.c src/ljournal.c $(FUZZ_LIBSRC) $(LUALIB) $(LIBS) -lm -ldl

fuzz: deps fuzz-deps $(BUILD)/fuzz/server_fuzz $(BUILD)/fuzz/response_fuzz
	@for t in server response; do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -print_final_stats=1 fuzz/corpus/$$t 2>&1 | \
	    grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|ERROR|crash-|Done" || exit 1; \
	done
