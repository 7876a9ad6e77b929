-- Shared test setup: the module from the build tree and an emulator per
-- test, always under a watchdog so a hang fails instead of stalling CI.
local build = os.getenv("GIGSTACK_BUILD") or "build"
package.cpath = "./" .. build .. "/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
