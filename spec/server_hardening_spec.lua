-- The C server against hostile clients (issue 13), scaled down so each
-- case takes a few seconds: slowloris against a lowered connection cap,
-- a header flood, a pipelining client that never reads, Expect:
-- 100-continue, a response over the server's size limit. The attackers
-- are bash scripts on loopback (/dev/tcp) in their own process group,
-- bounded in time and killed at the end; the server runs in this
-- process, so every wait polls its counters with a bound.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local core = require "gigstack.core"
local support = require "support"

local WATCHDOG = { timeout = support.WATCHDOG }

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Run a bash script in the background in its own process group. Not
-- under `make check`'s LD_PRELOAD: curl with ASan preloaded deadlocks.
local function spawn(script)
  local f = assert(io.popen("env -u LD_PRELOAD setsid bash -c " .. shq(script) .. " >/dev/null 2>&1 & echo $!"))
  local pid = assert(tonumber(f:read("l")), "no pid from the shell")
  f:close()
  return pid
end

local function kill(pid)
  assert(os.execute("kill -TERM -" .. pid .. " 2>/dev/null || true"))   -- the whole group
end

--- Poll cond every 20 ms for at most bound seconds: ok, elapsed ms.
local function wait_for(cond, bound)
  local t0 = core.now()
  while not cond() do
    if core.now() - t0 > bound * 1000 then return false, core.now() - t0 end
    gigstack.sleep(0.02)
  end
  return true, core.now() - t0
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function count_lines(path)
  local s = read_file(path) or ""
  local n = 0
  for _ in s:gmatch("[^\n]*\n") do n = n + 1 end
  return n
end

local function rss_kb()
  return tonumber(read_file("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

describe("server hardening", function()
  local pids, files = {}, {}
  local function tmp()
    local p = os.tmpname()
    files[#files + 1] = p
    os.remove(p)
    return p
  end
  after_each(function()
    for _, pid in ipairs(pids) do kill(pid) end
    for _, p in ipairs(files) do os.remove(p); os.remove(p .. ".tmp") end
    pids, files = {}, {}
  end)

  it("closes 100 slowloris connections at a 0.5 s header deadline while a fresh client is served", function()
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, max_connections = 50, header_timeout = 0.5,
        handler = function() return 200, {}, "ok" end })
      local opened = tmp()
      -- 100 connections send a request line, then one byte each every
      -- 0.1 s for up to 10 s: bytes never extend the header deadline
      pids[#pids + 1] = spawn(([[
        trap '' PIPE; fds=()
        for i in $(seq 100); do
          exec {fd}<>/dev/tcp/127.0.0.1/%d && fds+=($fd)
          printf 'GET /slow HTTP/1.1\r\n' >&$fd 2>/dev/null
        done
        echo opened > %s
        for n in $(seq 100); do
          for fd in "${fds[@]}"; do printf X >&$fd 2>/dev/null; done
          sleep 0.1
        done]]):format(server.port, opened))
      assert.is_true(wait_for(function() return read_file(opened) ~= nil end, 10), "attacker did not start")
      assert.is_true(wait_for(function() return server.stats().accepted >= 100 end, 10))
      -- the cap is 50, so at least 50 of them are already gone again
      local t0 = core.now()
      local fresh = http.request{ url = server.url .. "/fresh", timeout = 5 }
      local served_ms = core.now() - t0
      assert.equals(200, fresh.status)
      assert.is_true(served_ms < 1000, "fresh client took " .. served_ms .. " ms")
      -- every slow connection ends, evicted at the cap or cut at its
      -- deadline (0.5 s after its accept), while it still drips bytes
      local all_gone, waited = wait_for(function()
        local st = server.stats()
        -- a 408 still being written keeps its connection a moment
        return st.evicted + st.header_timeouts >= 100 and st.connections == 1
      end, 5)
      local st = server.stats()
      server.close()
      assert.is_true(all_gone, ("after %.0f ms: %d evicted, %d timed out, %d open"):format(waited, st.evicted,
        st.header_timeouts, st.connections))
      assert.equals(100, st.evicted + st.header_timeouts)
      assert.is_true(st.evicted >= 50, "evicted " .. st.evicted)   -- 100 slow + 1 fresh against 50 slots
      assert.equals(1, st.connections)                              -- the fresh client's kept-alive one
    end, WATCHDOG)
  end)

  it("answers 20 connections x 8,000 tiny headers with 431 early: no memory growth, nothing held", function()
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, handler = function() return 200, {}, "ok" end })
      local out = tmp()
      collectgarbage()
      local before = rss_kb()
      -- an incomplete header block ("a:b\r\n" x 8,000 = 40,000 bytes, no
      -- blank line) per connection; the attacker holds them open for 10 s
      pids[#pids + 1] = spawn(([[
        trap '' PIPE; fds=()
        hdrs=$(printf 'a:b\r\n%%.0s' $(seq 8000))
        for i in $(seq 20); do
          exec {fd}<>/dev/tcp/127.0.0.1/%d && fds+=($fd)
          printf 'GET / HTTP/1.1\r\nHost: x\r\n%%s\r\n' "$hdrs" >&$fd 2>/dev/null
          read -t 3 -r line <&$fd; echo "${line%%$'\r'}" >> %s
        done
        sleep 10]]):format(server.port, out))
      assert.is_true(wait_for(function() return count_lines(out) >= 20 end, 15), "attacker did not finish")
      local grown = rss_kb() - before
      local closed = wait_for(function() return server.stats().connections == 0 end, 3)
      local st = server.stats()
      server.close()
      local lines = {}
      for line in (read_file(out) or ""):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
      -- 101st header: over the count cap of 100 (the 16 KiB budget alone
      -- would have taken 16 KiB / (3 + 64) = 244 of them)
      for i = 1, 20 do
        assert.equals("HTTP/1.1 431 Request Header Fields Too Large", lines[i])
      end
      assert.is_true(closed, "still open: " .. st.connections)
      assert.equals(20, st.accepted)
      -- before: 8,000 x (256 + 256 + struct) per connection, ~94 MB here
      assert.is_true(grown < 8 * 1024, "RSS grew by " .. grown .. " KiB")
    end, WATCHDOG)
  end)

  it("answers the 11th header over max_headers = 10 with 431 and serves 10", function()
    gigstack.run(function()
      local server = assert(http.listen{ port = 0, max_headers = 10,
        handler = function() return 200, {}, "ok" end })
      local out = tmp()
      -- Host plus 9 (10 in all), then Host plus 10 (11 in all)
      pids[#pids + 1] = spawn(([[
        for n in 9 10; do
          exec {fd}<>/dev/tcp/127.0.0.1/%d
          printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' >&$fd
          for i in $(seq $((n - 1))); do printf 'X-H%%d: v\r\n' $i >&$fd; done
          printf '\r\n' >&$fd
          read -t 3 -r line <&$fd; echo "${line%%$'\r'}" >> %s
          exec {fd}>&-
        done]]):format(server.port, out))
      assert.is_true(wait_for(function() return count_lines(out) >= 2 end, 10), "client did not finish")
      server.close()
      assert.equals("HTTP/1.1 200 OK\nHTTP/1.1 431 Request Header Fields Too Large\n", read_file(out))
    end, WATCHDOG)
  end)

  it("disconnects a pipelining client that never reads at the 0.5 s write timeout", function()
    gigstack.run(function()
      local big = string.rep("x", 256 * 1024)
      local served = 0
      local server = assert(http.listen{ port = 0, write_timeout = 0.5,
        handler = function() served = served + 1 return 200, {}, big end })
      local sent = tmp()
      -- 64 requests for 256 KiB each (16 MiB) in one write, then nothing
      -- is read for up to 20 s: more than loopback socket buffers hold
      pids[#pids + 1] = spawn(([[
        exec {fd}<>/dev/tcp/127.0.0.1/%d
        printf 'GET /big HTTP/1.1\r\nHost: x\r\n\r\n%%.0s' $(seq 64) >&$fd
        echo sent > %s
        sleep 20]]):format(server.port, sent))
      assert.is_true(wait_for(function() return read_file(sent) ~= nil end, 10), "client did not start")
      local cut, waited = wait_for(function() return server.stats().write_timeouts == 1 end, 10)
      local st = server.stats()
      server.close()
      assert.is_true(cut, "no write timeout after " .. waited .. " ms")
      assert.equals(0, st.connections)
      -- the stuck write began somewhere between "sent" and now
      assert.is_true(waited < 3000, "cut after " .. waited .. " ms")
      assert.is_true(served >= 1 and served < 64, "served " .. served)
    end, WATCHDOG)
  end)

  it("answers Expect: 100-continue at once: a 2 KB POST in well under 100 ms, 413 without the body", function()
    gigstack.run(function()
      local got
      local server = assert(http.listen{ port = 0, max_body = 4096,
        handler = function(req) got = #req.body return 200, {}, "ok" end })
      local body = tmp()
      local f = assert(io.open(body, "w"))
      f:write(string.rep("b", 2048))
      f:close()
      local function curl(size_file, out)
        -- curl waits 1 s (its expect timeout) for a 100 that never comes
        pids[#pids + 1] = spawn(("curl -s -o /dev/null -w '%%{http_code} %%{time_total}' -H 'Expect: 100-continue' "
          .. "--data-binary @%s %s/in > %s.tmp; mv %s.tmp %s"):format(size_file, server.url, out, out, out))
        assert.is_true(wait_for(function() return read_file(out) ~= nil end, 10), "curl did not finish")
        local code, secs = read_file(out):match("^(%d+) ([%d.]+)$")
        return tonumber(code), tonumber(secs)
      end
      local code, secs = curl(body, tmp())
      assert.equals(200, code)
      assert.equals(2048, got)
      assert.is_true(secs < 0.1, "took " .. secs .. " s")
      local large = tmp()
      f = assert(io.open(large, "w"))
      f:write(string.rep("b", 8192))
      f:close()
      got = nil
      code, secs = curl(large, tmp())
      server.close()
      assert.equals(413, code)
      assert.is_nil(got)
      assert.is_true(secs < 0.1, "took " .. secs .. " s")
    end, WATCHDOG)
  end)

  it("answers Expect: 100-continue without credentials with 401 at once, the body never read", function()
    local mock = require "gigstack.mock"
    local webhooks = require "gigstack.runner.webhooks"
    gigstack.run(function()
      local emu = assert(mock.start{ port = 0 })
      local hooks = webhooks.listen{ port = 0, client = false }
      -- both servers are closed whatever happens: a failure must not leave
      -- the listener's keeper task holding the next spec's loop
      local _ <close> = setmetatable({}, { __close = function() webhooks.stop(); emu.close() end })
      local before = emu.emulator.requests
      local body = tmp()
      local f = assert(io.open(body, "w"))
      f:write(string.rep("b", 2048))
      f:close()
      local function curl(url, header)
        local out = tmp()
        pids[#pids + 1] = spawn(("curl -s -o /dev/null -w '%%{http_code} %%{time_total}' -H 'Expect: 100-continue' "
          .. "%s --data-binary @%s %s > %s.tmp; mv %s.tmp %s"):format(header or "", body, url, out, out, out))
        assert.is_true(wait_for(function() return read_file(out) ~= nil end, 10), "curl did not finish")
        local code, secs = read_file(out):match("^(%d+) ([%d.]+)$")
        return tonumber(code), tonumber(secs)
      end
      -- the emulator: no Bearer header, refused before the body
      local code, secs = curl(emu.base_url .. "/payments/register")
      assert.equals(401, code)
      assert.is_true(secs < 0.1, "took " .. secs .. " s")
      assert.equals(before, emu.emulator.requests)          -- the handler never saw it
      -- with a key the body is read and the handler answers (400: not a valid register)
      code = curl(emu.base_url .. "/payments/register", "-H 'Authorization: Bearer sk_test_mock'")
      assert.equals(400, code)
      -- the webhook listener: the wrong path is refused at once, the secret path is let in
      code, secs = curl(hooks.local_url .. "/hooks/wrong")
      assert.equals(401, code)
      assert.is_true(secs < 0.1, "took " .. secs .. " s")
      code = curl(hooks.local_url .. "/hooks/" .. hooks.secret)
      assert.equals(400, code)                              -- read, then refused: not an event
    end, WATCHDOG)
  end)

  it("answers 500 and closes when a response exceeds max_response (no use after free under ASan)", function()
    gigstack.run(function()
      local sent
      local server = assert(http.listen{ port = 0, max_response = 1000,
        handler = function(req) sent = req:respond(200, {}, string.rep("r", 1001)) end })
      local resp = http.request{ url = server.url .. "/big" }
      local again = http.request{ url = server.url .. "/again" }
      local st = server.stats()
      server.close()
      assert.is_false(sent)
      assert.equals(500, resp.status)
      assert.equals(500, again.status)
      assert.equals(2, st.accepted)   -- the first connection was closed, not reused
    end, WATCHDOG)
  end)

  it("client: a body of exactly max_response arrives whole, one byte more is refused", function()
    gigstack.run(function()
      -- 100,000 distinct-enough bytes: a buffer sized one short would cut or corrupt them
      local body = string.rep("0123456789", 10000)
      local server = assert(http.listen{ port = 0,
        handler = function(req) return 200, {}, req.path == "/over" and body .. "!" or body end })
      local exact = http.request{ url = server.url .. "/exact", max_response = 100000 }
      local over, err = http.request{ url = server.url .. "/over", max_response = 100000 }
      server.close()
      assert.equals(200, exact.status)
      assert.equals(body, exact.body)
      assert.is_nil(over)
      assert.equals("too_large", err.kind)
    end, WATCHDOG)
  end)
end)
