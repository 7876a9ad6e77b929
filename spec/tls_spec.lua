-- TLS: peer and host verification are on by default; a CA file adds
-- trust. The peer is `openssl s_server` on loopback with a certificate
-- made for the test.
local gigstack = require "gigstack"
local http = require "gigstack.async.http"
local support = require "support"

local function free_port()
  local port
  gigstack.run(function()
    local probe = assert(http.listen{ port = 0, handler = function() return 200 end })
    port = probe.port
    probe.close()
  end, { timeout = support.WATCHDOG })
  return port
end

describe("TLS", function()
  it("refuses a self-signed server by default and accepts it with ca_file", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local code = support.sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      .. "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " .. dir .. "/key.pem -out "
      .. dir .. "/cert.pem")
    assert.equals(0, code)
    local port = free_port()
    local server = io.popen("exec openssl s_server -quiet -www -accept 127.0.0.1:" .. port .. " -cert "
      .. dir .. "/cert.pem -key " .. dir .. "/key.pem > /dev/null 2>&1 & echo $!")
    local pid = server:read("l")
    server:close()
    local url = "https://127.0.0.1:" .. port .. "/"
    local refused, accepted, accepted_err
    gigstack.run(function()
      for _ = 1, 50 do   -- wait for s_server to listen
        local _, err = http.request{ url = url, timeout = 1 }
        if not err or err.kind ~= "connect" then break end
        gigstack.sleep(0.1)
      end
      refused = select(2, http.request{ url = url, timeout = 2 })
      accepted, accepted_err = http.request{ url = url, timeout = 2, ca_file = dir .. "/cert.pem" }
    end, { timeout = support.WATCHDOG })
    os.execute("kill " .. pid)
    os.execute("rm -rf " .. dir)
    assert.is_table(refused)
    assert.equals("tls", refused.kind)
    assert.is_nil(accepted_err)
    assert.equals(200, accepted.status)
  end)
end)
