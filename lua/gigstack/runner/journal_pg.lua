--- The PostgreSQL backend of the journal: the claim interface of
-- gigstack.runner.journal (get, claim, done, release, close) over libpq on
-- the core's libuv loop, so runners on several machines share one
-- exactly-once journal. Each call yields only the calling task while its
-- query runs.
--
-- Claims carry a lease (owner, token, expires), taken in one transaction
-- (a server-side function serialized per key by an advisory transaction
-- lock); a heartbeat renews this process's claims while their work runs;
-- a claim whose lease ran out, or whose owner is a dead process of this
-- host, is taken over. `map` splits a batch between runners through a
-- queue table claimed with FOR UPDATE SKIP LOCKED. `lock` is --lock NAME:
-- a session advisory lock. The schema is created and migrated here
-- (table gigstack_schema, one row per applied version).
local core = require "gigstack.core"
local sched = require "gigstack.async.sched"

local M = {}

M.SCHEMA_VERSION = 2
-- advisory lock key spaces: 7301 for claims (in the SQL functions below,
-- whose text is the schema's and stays as migrated), 7302 --lock, 7300
-- migrations
local LOCK_CLASS, MIGRATE_LOCK = 7302, 7300

-- Each migration runs once, in order, in one transaction, under an
-- advisory lock so runners starting together do not race.
M.MIGRATIONS = {
  [1] = [[
CREATE TABLE gigstack_done (
  key text PRIMARY KEY, result text NOT NULL, owner text,
  at timestamptz NOT NULL DEFAULT now());
CREATE TABLE gigstack_claims (
  key text PRIMARY KEY, owner text NOT NULL, token text NOT NULL,
  expires timestamptz NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 1);
CREATE INDEX gigstack_claims_owner ON gigstack_claims (owner);
CREATE TABLE gigstack_locks (
  name text PRIMARY KEY, owner text NOT NULL, since timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION gigstack_claim(p_key text, p_owner text, p_token text, p_lease float8, p_dead text)
RETURNS TABLE (st text, val text) LANGUAGE plpgsql AS $f$
DECLARE r text; c gigstack_claims%ROWTYPE;
BEGIN
  PERFORM pg_advisory_xact_lock(7301, hashtext(p_key));
  SELECT d.result INTO r FROM gigstack_done d WHERE d.key = p_key;
  IF FOUND THEN RETURN QUERY SELECT 'done'::text, r; RETURN; END IF;
  SELECT * INTO c FROM gigstack_claims k WHERE k.key = p_key;
  IF NOT FOUND THEN
    INSERT INTO gigstack_claims (key, owner, token, expires)
      VALUES (p_key, p_owner, p_token, now() + p_lease * interval '1 second');
    RETURN QUERY SELECT 'claimed'::text, 'false'::text; RETURN;
  END IF;
  IF c.token = p_token THEN          -- our own call, retried after a lost reply
    RETURN QUERY SELECT 'claimed'::text, 'false'::text; RETURN;
  END IF;
  IF c.expires > now() AND c.owner IS DISTINCT FROM p_dead THEN
    RETURN QUERY SELECT 'busy'::text, c.owner; RETURN;
  END IF;
  UPDATE gigstack_claims k SET owner = p_owner, token = p_token,
    expires = now() + p_lease * interval '1 second', claimed_at = now(), attempts = k.attempts + 1
    WHERE k.key = p_key;
  RETURN QUERY SELECT 'claimed'::text, 'true'::text;
END $f$;
CREATE FUNCTION gigstack_commit(p_key text, p_owner text, p_token text, p_result text)
RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE prior text;
BEGIN
  PERFORM pg_advisory_xact_lock(7301, hashtext(p_key));
  SELECT d.owner INTO prior FROM gigstack_done d WHERE d.key = p_key;
  INSERT INTO gigstack_done (key, result, owner) VALUES (p_key, p_result, p_owner)
    ON CONFLICT (key) DO UPDATE SET result = EXCLUDED.result, owner = EXCLUDED.owner, at = now();
  DELETE FROM gigstack_claims k WHERE k.key = p_key AND k.token = p_token;
  -- false: the claim was gone (its lease ran out and another took it);
  -- true also for our own commit sent again after a lost reply
  RETURN FOUND OR prior = p_owner;
END $f$;
]],
  [2] = [[
CREATE TABLE gigstack_queue (
  batch text NOT NULL, key text NOT NULL, ord integer NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'taken', 'done', 'failed')),
  owner text, expires timestamptz, attempts integer NOT NULL DEFAULT 0,
  done_by text, done_at timestamptz,
  PRIMARY KEY (batch, key));
CREATE INDEX gigstack_queue_open ON gigstack_queue (batch, ord) WHERE state IN ('pending', 'taken');
]],
}

local DB = {}
DB.__index = DB

local function now() return core.now() / 1000 end

--- Wait for a core token: yields the task, or drives the loop when
-- called outside any task (journal.open at the top of a script).
local function wait(token)
  if sched.current() then return sched.await(token) end
  local ev
  local done = false
  local t = sched.spawn(function() ev = sched.await(token); done = true end)
  t.silent = true
  local ok, why = sched.loop_until(function() return done or t.done end)
  if not ok then error("journal: " .. tostring(why), 3) end
  return ev
end

M.CONNECT_TIMEOUT = 10   -- seconds: libpq's connect_timeout does not apply to async connects

local function connect(url)
  local conn, token = core.pg_connect(url)
  if not conn then return nil, token end
  local ev = sched.within(M.CONNECT_TIMEOUT, function() return "timeout" end, wait, token)
  if not ev then
    conn:close()
    return nil, string.format("could not connect to server: no answer within %g s", M.CONNECT_TIMEOUT)
  end
  local ok, err = conn:result()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

--- A failure that a new connection may cure (the server went away,
-- restarts, or does not accept connections yet).
local function transient(msg, sqlstate, lost)
  if lost then return true end
  if sqlstate and (sqlstate:match("^08") or sqlstate == "57P01" or sqlstate == "57P02"
      or sqlstate == "57P03") then return true end
  return msg ~= nil and (msg:find("could not connect", 1, true) or msg:find("connection to server", 1, true)
    or msg:find("server closed the connection", 1, true) or msg:find("No such file", 1, true)) ~= nil
end

local function redact(url)
  return (tostring(url):gsub("(://[^:/@]*):[^@/]*@", "%1:***@"):gsub("password=[^&%s]*", "password=***"))
end

--- One query on a pooled connection: rows or raises. A lost
-- connection is replaced and the query sent again until opts.reconnect
-- seconds have passed (every query here is safe to repeat), so while the
-- database is down the callers wait and start no new work.
function DB:query(sql, params)
  if self.closed then error("journal: closed", 2) end
  local deadline, delay, last
  while true do
    local conn = table.remove(self.idle)
    if not conn and self.nconn >= self.pool then
      -- every connection is in use: queue for the next one
      local co = coroutine.running()
      if sched.current() then
        self.waiters[#self.waiters + 1] = co
        coroutine.yield()
        conn = table.remove(self.idle)
      end
    end
    local rows, err, sqlstate, lost
    if not conn then
      self.nconn = self.nconn + 1
      conn, err = connect(self.url)
      if not conn then self.nconn = self.nconn - 1; lost = true end
    end
    if conn then
      local token
      token, err = conn:query(sql, params)
      if token then
        local answered = false
        local _ <close> = setmetatable({}, { __close = function()
          if not answered then conn:close(); self.nconn = self.nconn - 1 end   -- cancelled mid-query
        end })
        wait(token)
        answered = true
        rows, err, sqlstate, lost = conn:result()
      else
        lost = true
      end
      if conn:status() == "idle" then
        self.idle[#self.idle + 1] = conn
      else
        conn:close()
        self.nconn = self.nconn - 1
      end
      local w = table.remove(self.waiters, 1)
      if w then sched.wake(w) end
    end
    if rows then
      if last then
        self.reconnects = self.reconnects + 1
        if self.on_event then self.on_event("reconnected", last) end
      end
      return rows
    end
    if not transient(err, sqlstate, lost) then
      error("journal: postgres: " .. tostring(err) .. (sqlstate and " (" .. sqlstate .. ")" or ""), 2)
    end
    last = err
    deadline = deadline or now() + self.reconnect
    if self.on_event and delay == nil then self.on_event("lost", err) end
    if now() >= deadline then
      error(string.format("journal: postgres %s unreachable for %g s: %s", redact(self.url),
        self.reconnect, tostring(err)), 2)
    end
    delay = math.min((delay or 0.05) * 2, 1)
    sched.sleep(delay)
  end
end

-- one query on a connection of its own (no pool, no reconnect): rows, or
-- nil and the reason
local function run(conn, sql, params)
  local token, err = conn:query(sql, params)
  if not token then return nil, err end
  wait(token)
  return conn:result()
end

-- apply the migrations this database lacks, in one transaction each
local function migrate(db)
  local conn, err = connect(db.url)
  if not conn then error("journal: cannot connect to " .. redact(db.url) .. ": " .. tostring(err), 3) end
  local function q(sql) return run(conn, sql) end
  local ok, result = pcall(function()
    for v = 1, M.SCHEMA_VERSION do
      local rows, qerr = q("BEGIN; SELECT pg_advisory_xact_lock(" .. MIGRATE_LOCK .. ");"
        .. "CREATE TABLE IF NOT EXISTS gigstack_schema (version integer PRIMARY KEY,"
        .. " applied_at timestamptz NOT NULL DEFAULT now());"
        .. "SELECT coalesce(max(version), 0) FROM gigstack_schema")
      if not rows then error(qerr, 0) end
      local have = tonumber(rows[1][1])
      if have > M.SCHEMA_VERSION then
        q("ROLLBACK")
        error(string.format("schema version %d is newer than this gigstack (%d)", have, M.SCHEMA_VERSION), 0)
      end
      if have < v then
        local done, merr = q(M.MIGRATIONS[v] .. "; INSERT INTO gigstack_schema (version) VALUES (" .. v .. ")")
        if not done then q("ROLLBACK"); error(string.format("migration %d: %s", v, merr), 0) end
      end
      local c, cerr = q("COMMIT")
      if not c then error(cerr, 0) end
    end
    return true
  end)
  conn:close()
  if not ok then error("journal: " .. redact(db.url) .. ": " .. tostring(result), 3) end
end

--- open(url, {lease, pool, reconnect}) -> db (raises with the reason).
-- lease: seconds a claim holds without renewal (600); pool: connections
-- (4); reconnect: seconds to keep retrying a lost database (60).
function M.open(url, opts)
  opts = opts or {}
  local db = setmetatable({ url = url, lease = opts.lease or 600, pool = opts.pool or 4,
    reconnect = opts.reconnect or 60, owner = core.owner_self(), idle = {}, waiters = {},
    nconn = 0, held = {}, ntaken = 0, seq = 0,
    lost = 0, reconnects = 0, on_event = opts.on_event }, DB)
  migrate(db)
  return db
end

function DB:get(key)
  local rows = self:query("SELECT result FROM gigstack_done WHERE key = $1", { key })
  return rows[1] and rows[1][1]
end

-- renew this process's claims and queue items every lease/3 while any
-- are held; a claim missing from the renewal was taken over (lost)
function DB:heartbeat()
  if self.hb and not self.hb.done then return end
  if not sched.current() then return end
  self.hb = sched.spawn(function()
    while not self.closed and (next(self.held) or self.ntaken > 0) do
      sched.sleep(math.max(self.lease / 3, 0.05))
      if self.closed or (not next(self.held) and self.ntaken == 0) then break end
      self.renewing = true
      -- only claims held before the renewal was sent can be missing from it
      local before = {}
      for key, token in pairs(self.held) do before[key] = token end
      local ok, rows = pcall(self.query, self, "UPDATE gigstack_claims SET expires = now() + $2 * interval "
        .. "'1 second' WHERE owner = $1 RETURNING key, token", { self.owner, self.lease })
      if ok then
        local renewed = {}
        for _, r in ipairs(rows) do renewed[r[2]] = true end
        for key, token in pairs(before) do
          if self.held[key] == token and not renewed[token] then
            self.held[key] = nil
            self.lost = self.lost + 1
          end
        end
        pcall(self.query, self, "UPDATE gigstack_queue SET expires = now() + $2 * interval '1 second'"
          .. " WHERE owner = $1 AND state = 'taken'", { self.owner, self.lease })
      end
      self.renewing = false
    end
  end)
  self.hb:daemon_set()
  self.hb.silent = true
end

function DB:claim(key, lease)
  self.seq = self.seq + 1
  local token = string.format("%s:%d", self.owner, self.seq)
  local lease_s = lease or self.lease
  local rows = self:query("SELECT st, val FROM gigstack_claim($1, $2, $3, $4, $5)",
    { key, self.owner, token, lease_s, nil, n = 5 })
  local state, value = rows[1][1], rows[1][2]
  if state == "busy" and not core.owner_alive(value) then
    -- a process of this host that died: no need to wait for its lease
    rows = self:query("SELECT st, val FROM gigstack_claim($1, $2, $3, $4, $5)",
      { key, self.owner, token, lease_s, value })
    state, value = rows[1][1], rows[1][2]
  end
  if state == "claimed" then
    self.held[key] = token
    self:heartbeat()
    return "claimed", value == "true"
  end
  return state, value
end

-- nothing left to renew: the heartbeat's timer must not keep a run alive
local function idle_check(self)
  if not next(self.held) and self.ntaken == 0 and self.hb and not self.hb.done and not self.renewing then
    sched.cancel(self.hb, "idle")
  end
end

local function drop(self, key)
  self.held[key] = nil
  idle_check(self)
end

function DB:done(key, result)
  local token = self.held[key]
  local rows = self:query("SELECT gigstack_commit($1, $2, $3, $4)", { key, self.owner, token or "", result or "" })
  if token and rows[1][1] ~= "t" then self.lost = self.lost + 1 end   -- the lease had run out meanwhile
  drop(self, key)
  return true
end

function DB:release(key)
  local token = self.held[key]
  drop(self, key)
  if token then self:query("DELETE FROM gigstack_claims WHERE key = $1 AND token = $2", { key, token }) end
end

function DB:close()
  if self.closed then return end
  self.closed = true
  for _, conn in ipairs(self.idle) do conn:close() end
  self.idle = {}
end

-- ===== splitting a batch between runners =====

--- map(batch, items, concurrency, fn, {key}) -> results like
-- gigstack.map, for the items this runner took (nil for the others).
-- Every runner started on the same batch enqueues the same keys (once);
-- each worker takes the next pending item with FOR UPDATE SKIP LOCKED,
-- so the runners together take every item once. An item whose runner
-- died is taken again when its lease ends; a runner waits for the items
-- other runners hold before it returns, so the batch is finished when
-- any runner returns. fn should use journal:once for its side effects.
function DB:map(batch, items, concurrency, fn, opts)
  opts = opts or {}
  local keyf = opts.key or function(item, i) return type(item) == "table" and item.id or i end
  local stopped = opts.stopped or function() return nil end
  local index, keys = {}, {}
  for i, item in ipairs(items) do
    local k = tostring(keyf(item, i))
    if index[k] then error("journal map: key " .. k .. " appears twice in the batch", 2) end
    index[k] = i
    keys[#keys + 1] = k
  end
  -- enqueue in chunks; a failed item of an earlier run is pending again
  for first = 1, #keys, 500 do
    local chunk = {}
    for i = first, math.min(first + 499, #keys) do chunk[#chunk + 1] = keys[i] end
    self:query("INSERT INTO gigstack_queue (batch, key, ord) SELECT $1, k, $3::int + o - 1"
      .. " FROM unnest($2::text[]) WITH ORDINALITY AS t(k, o)"
      .. " ON CONFLICT (batch, key) DO UPDATE SET state = 'pending', owner = NULL"
      .. " WHERE gigstack_queue.state = 'failed'", { batch, M.text_array(chunk), first })
  end
  local results = {}
  local function take()
    local rows = self:query("UPDATE gigstack_queue q SET state = 'taken', owner = $2,"
      .. " expires = now() + $3 * interval '1 second', attempts = q.attempts + 1"
      .. " WHERE (q.batch, q.key) IN (SELECT batch, key FROM gigstack_queue WHERE batch = $1"
      .. " AND (state = 'pending' OR (state = 'taken' AND expires < now())) ORDER BY ord LIMIT 1"
      .. " FOR UPDATE SKIP LOCKED) RETURNING q.key", { batch, self.owner, self.lease })
    return rows[1]
  end
  local function others()
    local rows = self:query("SELECT count(*), coalesce(extract(epoch FROM min(expires) - now()), 0)"
      .. " FROM gigstack_queue WHERE batch = $1 AND state = 'taken'", { batch })
    return tonumber(rows[1][1]), tonumber(rows[1][2])
  end
  local function worker()
    while true do
      if stopped() then return end
      local row = take()
      if not row then
        local n, first_expiry = others()
        if n == 0 then return end
        sched.sleep(math.max(0.05, math.min(1, first_expiry + 0.05)))
      else
        local k = row[1]
        local i = index[k]
        self.ntaken = self.ntaken + 1
        self:heartbeat()
        local r
        if i then
          r = table.pack(pcall(fn, items[i], i))
          results[i] = r
        else
          r = { false, "journal map: batch " .. batch .. " has key " .. k .. " this runner was not given" }
        end
        self.ntaken = self.ntaken - 1
        idle_check(self)
        local ok = r[1] and not (r[2] == nil and r[3] ~= nil)
        self:query("UPDATE gigstack_queue SET state = $4, owner = NULL, expires = NULL,"
          .. " done_by = $3, done_at = now() WHERE batch = $1 AND key = $2",
          { batch, k, self.owner, ok and "done" or "failed" })
      end
    end
  end
  local workers = {}
  for w = 1, math.max(1, math.min(concurrency or 8, #items)) do workers[w] = worker end
  sched.all(workers)
  return results
end

--- A Lua list of strings as a PostgreSQL text[] literal.
function M.text_array(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = '"' .. tostring(s):gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(out, ",") .. "}"
end

--- Per-runner counts of a batch: {[owner] = {done = n, failed = n}}, and totals.
function DB:batch_counts(batch)
  local rows = self:query("SELECT coalesce(done_by, ''), state, count(*) FROM gigstack_queue"
    .. " WHERE batch = $1 GROUP BY 1, 2", { batch })
  local by, totals = {}, {}
  for _, r in ipairs(rows) do
    local who = r[1] ~= "" and r[1] or "(none)"
    by[who] = by[who] or {}
    by[who][r[2]] = tonumber(r[3])
    totals[r[2]] = (totals[r[2]] or 0) + tonumber(r[3])
  end
  return by, totals
end

-- ===== --lock NAME =====

--- lock(url, name) -> lock | nil, reason ("held by ..."). The lock is a
-- session advisory lock on a connection of its own: the database drops
-- it when the session ends (the process dies, the connection is lost).
-- lock:watch(on_lost) checks the session twice a second and calls
-- on_lost(reason) once when it is gone.
function M.lock(url, name)
  local conn, err = connect(url)
  if not conn then return nil, "cannot connect to " .. redact(url) .. ": " .. tostring(err) end
  local function q(sql, params) return run(conn, sql, params) end
  local owner = core.owner_self()
  local rows, qerr = q("SELECT pg_try_advisory_lock(" .. LOCK_CLASS .. ", hashtext($1))", { name })
  if not rows then conn:close(); return nil, "lock " .. name .. ": " .. tostring(qerr) end
  if rows[1][1] ~= "t" then
    local who = q("SELECT owner, since FROM gigstack_locks WHERE name = $1", { name })
    conn:close()
    return nil, string.format("lock %s is held by another run%s", name,
      who and who[1] and (" (" .. who[1][1] .. " since " .. who[1][2] .. ")") or "")
  end
  q("INSERT INTO gigstack_locks (name, owner) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE"
    .. " SET owner = EXCLUDED.owner, since = now()", { name, owner })
  local lock = { name = name, conn = conn }
  function lock.watch(on_lost)
    local t = sched.spawn(function()
      while not lock.released do
        sched.sleep(0.5)
        if lock.released then break end
        local ok, why = q("SELECT 1")
        if not ok then
          lock.lost = why or "connection lost"
          conn:close()
          on_lost(lock.lost)
          return
        end
      end
    end)
    t:daemon_set()
    t.silent = true
  end
  function lock.release()
    if lock.released then return end
    lock.released = true
    if conn:status() == "idle" then
      q("DELETE FROM gigstack_locks WHERE name = $1 AND owner = $2", { name, owner })
      q("SELECT pg_advisory_unlock(" .. LOCK_CLASS .. ", hashtext($1))", { name })
    end
    conn:close()
  end
  return lock
end

-- ===== gigstack-run journal status|prune|unlock =====

--- ops(url, command, args) -> lines (raises on a database error).
--   status [--batch NAME]     schema, done count, live and expired claims,
--                             locks, batches with per-runner counts
--   prune --older-than DAYS   delete results (and finished batch items)
--                             older than DAYS
--   unlock KEY | --expired | --owner OWNER
--                             delete claims (the work may run again: its
--                             idempotency key makes the API call a replay)
function M.ops(url, command, args)
  local db = M.open(url, { reconnect = 5 })
  local out = {}
  local function say(...) out[#out + 1] = string.format(...) end
  local ok, err = pcall(function()
    if command == "status" then
      local v = db:query("SELECT max(version) FROM gigstack_schema")[1][1]
      local d = db:query("SELECT count(*), coalesce(to_char(min(at), 'YYYY-MM-DD\"T\"HH24:MI:SS'), '-'),"
        .. " coalesce(to_char(max(at), 'YYYY-MM-DD\"T\"HH24:MI:SS'), '-') FROM gigstack_done")[1]
      say("journal %s (schema version %s)", redact(url), v)
      say("done: %s results (oldest %s, newest %s)", d[1], d[2], d[3])
      local claims = db:query("SELECT key, owner, attempts, round(extract(epoch FROM expires - now()))"
        .. " FROM gigstack_claims ORDER BY expires")
      local live, expired = 0, 0
      for _, r in ipairs(claims) do
        if tonumber(r[4]) > 0 then live = live + 1 else expired = expired + 1 end
      end
      say("claims: %d live, %d expired", live, expired)
      for i, r in ipairs(claims) do
        if i > 20 then say("  ... %d more", #claims - 20); break end
        say("  %s  owner %s  attempts %s  %s", r[1], r[2], r[3],
          tonumber(r[4]) > 0 and ("expires in " .. r[4] .. " s") or ("expired " .. -tonumber(r[4]) .. " s ago"))
      end
      local locks = db:query("SELECT l.name, l.owner, to_char(l.since, 'YYYY-MM-DD\"T\"HH24:MI:SS'),"
        .. " EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.classid = "
        .. LOCK_CLASS .. " AND p.objid::bigint = (hashtext(l.name)::bigint & 4294967295) AND p.granted)"
        .. " FROM gigstack_locks l ORDER BY l.name")
      say("locks: %d", #locks)
      for _, r in ipairs(locks) do
        say("  %s  %s since %s (%s)", r[1], r[2], r[3], r[4] == "t" and "held" or "released")
      end
      local where = args.batch and " WHERE batch = $1" or ""
      local batches = db:query("SELECT batch, state, coalesce(done_by, ''), count(*) FROM gigstack_queue"
        .. where .. " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", args.batch and { args.batch } or nil)
      local cur
      for _, r in ipairs(batches) do
        if r[1] ~= cur then cur = r[1]; say("batch %s:", cur) end
        say("  %-8s %6s  %s", r[2], r[4], r[3] ~= "" and ("by " .. r[3]) or "")
      end
    elseif command == "prune" then
      local days = tonumber(args.older_than or "")
      if not days or days < 0 then error("prune: --older-than DAYS is required (a number >= 0)", 0) end
      local n = db:query("DELETE FROM gigstack_done WHERE at < now() - $1 * interval '1 day' RETURNING 1", { days })
      local q = db:query("DELETE FROM gigstack_queue WHERE state = 'done' AND done_at < now() - $1 * interval"
        .. " '1 day' RETURNING 1", { days })
      say("pruned %d results and %d finished batch items older than %g days", #n, #q, days)
    elseif command == "unlock" then
      local rows
      if args.expired then
        rows = db:query("DELETE FROM gigstack_claims WHERE expires < now() RETURNING key")
      elseif args.owner then
        rows = db:query("DELETE FROM gigstack_claims WHERE owner = $1 RETURNING key", { args.owner })
      elseif args.key then
        rows = db:query("DELETE FROM gigstack_claims WHERE key = $1 RETURNING key", { args.key })
      else
        error("unlock: give a KEY, --expired or --owner OWNER", 0)
      end
      say("released %d claims", #rows)
    else
      error("unknown journal command " .. tostring(command) .. " (status, prune, unlock)", 0)
    end
  end)
  db:close()
  if not ok then error(err, 0) end
  return out
end

M.redact = redact
return M
