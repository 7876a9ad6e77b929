std = "lua54"
max_line_length = 120
exclude_files = { "build/", ".luarocks/", "lua_modules/" }
files["spec"] = { std = "+busted" }
files[".busted"] = { globals = {} }
ignore = { "212/self" }
files["lua/gigstack/fiscal/catalogs.lua"] = { max_line_length = false }
files["scripts/dev/gen_reference.lua"] = { max_line_length = false }   -- example strings
