--- Coroutine scheduler over gigstack.core's event queue.
-- Tasks are coroutines started here; a task that waits on a core token
-- (request, timer) yields, and core.step() events resume it. Nothing
-- here runs inside a libuv or libcurl callback.
local core = require "gigstack.core"

local M = {}

local tasks = setmetatable({}, { __mode = "k" })  -- coroutine -> task
local waiting = {}        -- token -> coroutine, or a sentinel table
local watchdogs = {}      -- token -> sentinel; these never count as waiters
local ready, rhead, rtail = {}, 1, 0
local servers = {}        -- token -> handler(ev)
local signals = {}        -- token -> handler(ev)
local nservers = 0
local live_tasks = 0      -- non-daemon tasks not finished
local depth = 0           -- nested loop_until calls
M.failures = 0            -- unjoined tasks that died with an error
M.interrupted = nil       -- set by M.interrupt: loops stop at once

-- A task's joiners and children tables are made on first use, and its
-- methods live in one shared table: a task waiting on a request is a
-- table and a coroutine, no closures (each pending request holds one).
local NONE = {}           -- read in place of a table not made yet; never written
local Task = { __index = {} }

--- Mark the task a daemon: gigstack.run does not wait for it.
function Task.__index.daemon_set(task)
  if not task.daemon and not task.done then
    task.daemon = true
    live_tasks = live_tasks - 1
  end
  return task
end

local function push_ready(co, ...)
  rtail = rtail + 1
  ready[rtail] = table.pack(co, ...)
end

--- Called with a task that died with an error nobody joined; a host
-- (gigstack-run) replaces it to log one line. Counted in M.failures.
function M.on_failure(task)
  io.stderr:write("gigstack: task failed: ", task.traceback, "\n")
end

local function report(task)
  M.failures = M.failures + 1
  M.on_failure(task)
end

local function finish(task, ok, ...)
  task.done = true
  if task.parent then task.parent.children[task] = nil end   -- no growth over long runs
  if not task.daemon then live_tasks = live_tasks - 1 end
  if ok then
    task.results = table.pack(...)
  else
    local err = ...
    task.err = err
    local msg = type(err) == "string" and err or tostring(err)
    task.traceback = debug.traceback(task.co, msg)
    coroutine.close(task.co)          -- runs pending __close handlers
    if not (task.joiners or NONE)[1] and not task.silent then report(task) end
  end
  for _, co in ipairs(task.joiners or NONE) do push_ready(co) end
  for _, co in ipairs(task.watchers or NONE) do push_ready(co) end
end

local function resume(co, ...)
  local task = tasks[co]
  if coroutine.status(co) ~= "suspended" then return end
  local packed = table.pack(coroutine.resume(co, ...))
  if coroutine.status(co) == "dead" and task then
    finish(task, table.unpack(packed, 1, packed.n))
  end
end

local function run_ready()
  while rhead <= rtail do
    local item = ready[rhead]
    ready[rhead] = nil
    rhead = rhead + 1
    resume(table.unpack(item, 1, item.n))
  end
  ready, rhead, rtail = {}, 1, 0
end

local function dispatch(ev)
  if ev.type == "request" then
    local handler = servers[ev.token]
    if handler then
      M.spawn(handler, ev):daemon_set()
    else
      ev.handle:respond(503)
    end
  elseif ev.type == "signal" then
    local handler = signals[ev.token]
    if handler then M.spawn(handler, ev):daemon_set() end
  else
    local w = waiting[ev.token] or watchdogs[ev.token]
    waiting[ev.token], watchdogs[ev.token] = nil, nil
    if type(w) == "thread" then
      push_ready(w, ev)
    elseif type(w) == "table" then
      w.event = ev
      if w.co then push_ready(w.co) end
    end
  end
end

--- Make a suspended task coroutine runnable again (semaphores, joins).
function M.wake(co, ...)
  push_ready(co, ...)
end

--- Start fn(...) as a task; returns the task.
function M.spawn(fn, ...)
  local co = coroutine.create(fn)
  local task = setmetatable({ co = co, done = false }, Task)
  local parent = tasks[coroutine.running()]
  if parent then
    local kids = parent.children
    if not kids then kids = {}; parent.children = kids end
    kids[task] = true
    task.parent = parent
  end
  live_tasks = live_tasks + 1
  tasks[co] = task
  push_ready(co, ...)
  return task
end

--- The task running now, or nil outside any task.
function M.current()
  local co = coroutine.running()
  return tasks[co]
end

--- Drive the loop until pred() is true. Returns false, reason when
-- nothing could ever make pred true.
function M.loop_until(pred)
  depth = depth + 1
  while true do
    run_ready()
    if pred() then depth = depth - 1; return true end
    if M.interrupted then depth = depth - 1; return false, M.interrupted end
    if next(waiting) == nil and nservers == 0 then
      depth = depth - 1
      return false, "deadlock: tasks wait but nothing can wake them"
    end
    for _, ev in ipairs(core.step(true)) do dispatch(ev) end
  end
end

--- Wait for a core token's event from the current task. From the main
-- thread (no task running) the loop is driven until the event arrives.
function M.await(token)
  local co, main = coroutine.running()
  if main then
    local slot = {}
    waiting[token] = slot
    local ok, why = M.loop_until(function() return slot.event ~= nil end)
    if not ok then error(why, 2) end
    return slot.event
  end
  if not tasks[co] then
    error("gigstack: this call must run in a gigstack task (gigstack.run, "
      .. "gigstack.spawn or gigstack.all), not in a coroutine of your own", 2)
  end
  waiting[token] = co
  local task = tasks[co]
  task.token = token
  -- a stray wake-up (a join or a semaphore that no longer applies) must
  -- not pass for this token's event
  local ev
  repeat ev = coroutine.yield() until type(ev) == "table" and ev.token == token
  task.token = nil
  return ev
end

--- Stop a task and the tasks it spawned: cancel what it waits on, close
-- its coroutine (running its `<close>` handlers) and mark it failed
-- with `reason` (an error value or message).
function M.cancel(task, reason)
  if task.done then return false end
  for child in pairs(task.children or NONE) do M.cancel(child, reason) end
  if task.token then
    waiting[task.token] = nil
    core.cancel(task.token)
    task.token = nil
  end
  if coroutine.status(task.co) == "suspended" then coroutine.close(task.co) end
  task.silent = true
  task.done = true
  if task.parent then task.parent.children[task] = nil end
  if not task.daemon then live_tasks = live_tasks - 1 end
  task.err = reason
  task.traceback = tostring(reason)
  for _, co in ipairs(task.joiners or NONE) do push_ready(co) end
  for _, co in ipairs(task.watchers or NONE) do push_ready(co) end
  return true
end

--- Make every loop return: used on SIGINT/SIGTERM after the grace period.
function M.interrupt(reason)
  M.interrupted = reason
end

--- Run fn(...) as a task; if it is not done within `seconds`, cancel
-- it (and what it spawned) and return nil, on_timeout(). Otherwise
-- return its results (or raise its error).
function M.within(seconds, on_timeout, fn, ...)
  local child = M.spawn(fn, ...)
  child.silent = true
  local token = core.timer(seconds)
  local slot = {}
  waiting[token] = slot
  local co, main = coroutine.running()
  if main or not tasks[co] then
    local ok, why = M.loop_until(function() return child.done or slot.event ~= nil end)
    if not ok then error(why, 2) end
  else
    slot.co = co
    child.joiners = child.joiners or {}
    child.joiners[#child.joiners + 1] = co
    while not child.done and slot.event == nil do coroutine.yield() end
    -- neither the timer nor the child may wake this task again
    slot.co = nil
    for i = #child.joiners, 1, -1 do
      if child.joiners[i] == co then table.remove(child.joiners, i) end
    end
  end
  if not child.done then
    local err = on_timeout()
    M.cancel(child, err)
    return nil, err
  end
  waiting[token] = nil
  core.cancel(token)
  return M.join(child)
end

--- Forget a token's waiter (after core.cancel).
function M.forget(token)
  waiting[token] = nil
end

--- Run the functions of the list fns (fns.n or #fns of them) as tasks at
-- once and wait for all of them; returns a list of the first result of
-- each, in order. If any raised, the first error is raised once all have
-- finished (none is left running).
function M.all(fns)
  local n = fns.n or #fns
  local started = {}
  for i = 1, n do
    started[i] = M.spawn(fns[i])
    started[i].silent = true
  end
  local results, first_err = { n = n }, nil
  for i = 1, n do
    local ok, v = pcall(M.join, started[i])
    if ok then results[i] = v elseif first_err == nil then first_err = v end
  end
  if first_err ~= nil then error(first_err, 0) end
  return results
end

--- Wait for task to finish; returns its results or raises its error.
function M.join(task)
  if not task.done then
    local co = coroutine.running()
    if not tasks[co] then
      local ok, why = M.loop_until(function() return task.done end)
      if not ok then error(why, 2) end
    else
      task.joiners = task.joiners or {}
      task.joiners[#task.joiners + 1] = co
      while not task.done do coroutine.yield() end
    end
  end
  if task.err ~= nil then
    if type(task.err) == "string" then error(task.traceback, 0) end
    error(task.err, 0)
  end
  return table.unpack(task.results, 1, task.results.n)
end

function M.sleep(seconds)
  M.await(core.timer(seconds))
end

function M.add_server(token, handler)
  servers[token] = handler
  nservers = nservers + 1
end

function M.remove_server(token)
  if servers[token] then
    servers[token] = nil
    nservers = nservers - 1
  end
end

function M.on_signal(name, handler)
  local token = core.signal(name)
  signals[token] = handler
  return token
end

function M.off_signal(token)
  signals[token] = nil
  core.cancel(token)
end

-- From inside a task the loop is already running: wait (without a
-- second loop) until `task` and every non-daemon task it spawned are
-- done. Watching is not joining: a failure stays the task's own.
local function settle(task, co)
  local function pending(t)
    if not t.done and not t.daemon then return t end
    for child in pairs(t.children or NONE) do
      local p = pending(child)
      if p then return p end
    end
  end
  while true do
    local p = pending(task)
    if not p then return end
    p.watchers = p.watchers or {}
    p.watchers[#p.watchers + 1] = co
    repeat coroutine.yield() until p.done
    for i = #p.watchers, 1, -1 do
      if p.watchers[i] == co then table.remove(p.watchers, i) end
    end
  end
end

local function watchdog_error(seconds)
  return string.format("watchdog: gigstack.run did not finish within %g s", seconds)
end

--- Run fn as a task and drive the loop until it and every non-daemon
-- task it started are finished. opts.timeout (seconds) is a watchdog.
-- Called from a task (a script under gigstack-run), it runs fn in the
-- loop already running and returns when fn and its tasks are done.
function M.run(fn, opts)
  opts = opts or {}
  local co, is_main = coroutine.running()
  if not is_main and tasks[co] then
    local args = opts.args or {}
    local function body()
      local main = M.spawn(fn, table.unpack(args))
      main.silent = true
      settle(main, coroutine.running())
      return M.join(main)
    end
    if not opts.timeout then return body() end
    local timed_out = {}
    local r = table.pack(M.within(opts.timeout, function() return timed_out end, body))
    if r[1] == nil and r[2] == timed_out then error(watchdog_error(opts.timeout), 2) end
    return table.unpack(r, 1, r.n)
  end
  local main = M.spawn(fn, table.unpack(opts.args or {}))
  main.silent = true
  local dog, fired
  if opts.timeout then
    dog = core.timer(opts.timeout)
    fired = {}
    watchdogs[dog] = fired
  end
  local ok, why = M.loop_until(function()
    return (main.done and live_tasks == 0) or (fired and fired.event ~= nil)
  end)
  if dog then
    watchdogs[dog] = nil
    core.cancel(dog)
  end
  if fired and fired.event then
    error(watchdog_error(opts.timeout), 2)
  end
  if not ok and not main.done then error(why, 2) end
  return M.join(main)
end

return M
