#!/bin/sh
# LuaRocks end to end, offline: install rockspec/gigstack-$VERSION-1.rockspec
# into a scratch tree with its lua-cjson dependency resolved by LuaRocks,
# then run the installed runner on an installed example from another
# directory.
#
# lua-cjson is made visible to LuaRocks without the network: Debian's
# lua-cjson package (the cjson.so apt installed) is wrapped in a one-file
# rock, packed as a binary rock into a local rocks server with a manifest,
# and gigstack's install resolves "lua-cjson" from that server only.
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
version=$(sed -n 's/^#define GS_VERSION "\(.*\)"/\1/p' include/gigstack.h)
rockspec=rockspec/gigstack-$version-1.rockspec
tmp=$(mktemp -d /tmp/gigstack-rock.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
lr="luarocks --lua-version=5.4"

# 1. a local rock of Debian's lua-cjson
cjson=$(lua5.4 -e 'print(assert(package.searchpath("cjson", package.cpath)))')
cjver=$(dpkg-query -W -f='${Version}' lua-cjson 2>/dev/null | sed 's/[+~-].*//')
cjver=${cjver:-2.1.0}
mkdir -p "$tmp/cjson" "$tmp/server"
cp "$cjson" "$tmp/cjson/cjson.so"
cat > "$tmp/cjson/lua-cjson-$cjver-1.rockspec" <<ROCK
package = "lua-cjson"
version = "$cjver-1"
source = { url = "file://$tmp/cjson" }
description = { summary = "Debian's lua-cjson $cjver, wrapped for an offline LuaRocks tree", license = "MIT" }
dependencies = { "lua >= 5.1" }
build = { type = "builtin", modules = {}, install = { lib = { cjson = "cjson.so" } } }
ROCK
(cd "$tmp/cjson" && $lr make --tree "$tmp/stage" "lua-cjson-$cjver-1.rockspec" >/dev/null 2>&1)
(cd "$tmp/server" && $lr pack --tree "$tmp/stage" lua-cjson "$cjver-1" >/dev/null)
luarocks-admin make_manifest "$tmp/server" >/dev/null 2>&1
echo "local rocks server: $(ls "$tmp/server" | tr '\n' ' ')"

# 2. gigstack from a copy of the sources (the checkout's build/ is untouched)
mkdir -p "$tmp/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src"
(cd "$tmp/src" && $lr --only-server="$tmp/server" make "$rockspec" --tree "$tmp/tree") > "$tmp/make.log" 2>&1 || {
  tail -30 "$tmp/make.log"; echo "luarocks make failed"; exit 1; }
grep -E "^(Installing|gigstack .* is now installed|Missing dependencies)" "$tmp/make.log" || true
$lr list --tree "$tmp/tree" --porcelain

# 3. the installed runner, an installed example, from another directory
rockdir="$tmp/tree/lib/luarocks/rocks-5.4/gigstack/$version-1"
ex="$rockdir/share/gigstack/examples"
(cd "$rockdir" && ls share/man/man1/gigstack-run.1 share/gigstack/examples/auto_invoice.lua \
  share/gigstack/examples/data/sales.csv share/gigstack/examples/c/fetch_payment.c) | sed 's/^/  rock: /'
mkdir -p "$tmp/elsewhere"
cd "$tmp/elsewhere"
"$tmp/tree/bin/gigstack-run" --version
out=$("$tmp/tree/bin/gigstack-run" --mock "$ex/auto_invoice.lua" "$ex/data/sales.csv" 2>&1) || {
  echo "$out"; echo "installed example failed"; exit 1; }
echo "$out" | grep -E "invoices issued|total invoiced"
echo "$out" | grep -q "invoices issued: *60" || { echo "$out"; exit 1; }
(cd "$tmp/tree" && find bin lib/lua share -type f 2>/dev/null | sed "s,/[^/]*\.lua$,/*.lua," | sort | uniq -c | sed "s/^ */  /")
echo "rock check ok ($root -> $tmp/tree)"
