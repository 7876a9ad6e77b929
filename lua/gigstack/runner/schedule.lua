--- In-script schedules: gigstack.every("0 9 * * 1-5", fn, {tz = ...}).
-- Each job waits for its next fire time in its time zone, runs fn in a
-- task, and skips (and logs) a tick that comes while the previous run of
-- the same job is still going. Under `gigstack-run --once` a job runs
-- only if it is due this minute, then the script ends.
-- cron expressions and time zones load with the first schedule: a run
-- without one does not pay for them (start-up time)
local function cron() return require "gigstack.runner.cron" end
local function tz() return require "gigstack.fiscal.tz" end
local sched = require "gigstack.async.sched"
local log = require "gigstack.runner.log"
local journal = require "gigstack.runner.journal"

local M = { once = false, jobs = {} }

--- The clock and sleep are injectable (tests simulate a month).
M.clock = os.time
M.sleep = sched.sleep

local function run_job(job, at)
  if job.running then
    job.skipped = job.skipped + 1
    log.event("schedule.skipped", { job = job.name, at = os.date("!%Y-%m-%dT%H:%M:%SZ", at),
      reason = "previous run still going" }, "warn")
    return
  end
  job.running = true
  local task = sched.spawn(function()
    -- with a journal (--journal, GIGSTACK_JOURNAL_URL) each tick runs once
    -- across every process and machine running this schedule
    local j = journal.configured() and journal.default()
    local tb
    local function traced(e)
      tb = debug.traceback(log.describe(e), 2)
      return e
    end
    local ok, err
    if j then
      local how
      ok, err = xpcall(function()
        local r, h = j:once(string.format("schedule:%s:%d", job.name, at), function()
          job.runs = job.runs + 1
          job.fired[#job.fired + 1] = at
          job.fn(at)
          return true
        end, { wait = 0 })
        if r == nil and type(h) == "table" and h.kind == "busy" then how = "skipped"
        elseif r == nil then error(h, 0)
        else how = h end
      end, traced)
      if how == "skipped" then
        job.skipped = job.skipped + 1
        log.event("schedule.skipped", { job = job.name, at = os.date("!%Y-%m-%dT%H:%M:%SZ", at),
          reason = "this tick ran in another process" })
        ok, err = true, nil
      end
    else
      job.runs = job.runs + 1
      job.fired[#job.fired + 1] = at
      ok, err = xpcall(job.fn, traced, at)
    end
    job.running = false
    if not ok then
      job.failures = job.failures + 1
      log.failure("schedule.failed", err, tb, { job = job.name })
    end
  end)
  task.silent = true
end

--- every(expr, fn, {tz, name, clock, sleep, limit}) -> job. `limit`
-- stops after that many ticks (tests); otherwise the job runs until
-- stopped (M.stop_all on SIGINT/SIGTERM).
function M.every(expr, fn, opts)
  opts = opts or {}
  local spec, err = cron().parse(expr)
  if not spec then error("gigstack.every: " .. err, 2) end
  local zone_name = opts.tz or "UTC"
  local zone, zerr = tz().zone(zone_name)
  if not zone then error("gigstack.every: " .. zerr, 2) end
  if type(fn) ~= "function" then error("gigstack.every: fn must be a function", 2) end
  local clock, sleep = opts.clock or M.clock, opts.sleep or M.sleep
  local job = { name = opts.name or expr, expr = expr, tz = zone_name, fn = fn, runs = 0,
    skipped = 0, failures = 0, fired = {} }
  M.jobs[#M.jobs + 1] = job
  if M.once then   -- system cron mode: due this minute or not at all
    local now = clock()
    if cron().matches(spec, tz().to_local(zone, now)) then run_job(job, now - now % 60) end
    return job
  end
  job.task = sched.spawn(function()
    local ticks = 0
    while not job.stopped and (not opts.limit or ticks < opts.limit) do
      local now = clock()
      local at = cron().next(spec, now, zone_name)
      if not at then break end
      sleep(at - now)
      if job.stopped then break end
      ticks = ticks + 1
      run_job(job, at)
    end
  end)
  return job
end

--- How many runs of any job raised (gigstack-run exits 3 when > 0).
function M.failures()
  local n = 0
  for _, job in ipairs(M.jobs) do n = n + job.failures end
  return n
end

--- Stop every job's timer (runs in progress finish).
function M.stop_all()
  for _, job in ipairs(M.jobs) do
    job.stopped = true
    if job.task and not job.task.done then sched.cancel(job.task, "stopped") end
  end
end

return M
