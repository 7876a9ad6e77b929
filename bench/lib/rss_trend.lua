--- The verdict of `make bench`'s "RSS flat" check (issue 12), apart from
-- the bench so a spec can feed it series (spec/bench_rss_trend_spec.lua).
--
-- "Flat" means no growth trend, not "no sample above the first": after a
-- full collection the client's VmRSS still moves by a few hundred kB
-- between samples (malloc keeps freed chunks, arenas, the loop's buffers),
-- and the old rule "highest sample vs the first" failed a run whose last
-- sample equalled the first (50k:15,216 ... 200k:16,160 ... 300k:15,240
-- -> 6.2 %). A leak grows with the requests; noise does not. So:
--
--   slope   least-squares line through (requests, rss_kb), in kB per
--           100,000 requests
--   trend   slope projected over the sampled span, as % of the first
--           sample: what the run would have grown by if the line is true
--   verdict PASS when trend <= limit_pct (5 by default, the issue's
--           figure); a leak of b bytes per request adds b * 100000 / 1024
--           kB per 100k to the slope, so at a 15 MB baseline over 300k
--           requests anything from ~2.7 B/request fails
--
-- Also reported, not judged: end_delta_kb (mean of the last third of the
-- samples minus the mean of the first third) and the spread around the
-- line (max |residual|), so a reader can see noise from trend.
local M = {}

M.LIMIT_PCT = 5

--- Least-squares slope and intercept of ys over xs (same length >= 2).
function M.fit(xs, ys)
  local n = #xs
  local sx, sy = 0, 0
  for i = 1, n do sx, sy = sx + xs[i], sy + ys[i] end
  local mx, my = sx / n, sy / n
  local sxx, sxy = 0, 0
  for i = 1, n do
    local dx = xs[i] - mx
    sxx = sxx + dx * dx
    sxy = sxy + dx * (ys[i] - my)
  end
  if sxx == 0 then return 0, my end
  local slope = sxy / sxx
  return slope, my - slope * mx
end

local function mean(xs, from, to)
  local s = 0
  for i = from, to do s = s + xs[i] end
  return s / (to - from + 1)
end

--- samples: list of {requests = n, rss_kb = kB} in request order (at
-- least 3). Returns {slope_kb_per_100k, trend_pct, end_delta_kb,
-- spread_kb, first_kb, span_requests, limit_pct, ok} or nil, reason.
function M.judge(samples, limit_pct)
  limit_pct = limit_pct or M.LIMIT_PCT
  if type(samples) ~= "table" or #samples < 3 then return nil, "need at least 3 samples" end
  local xs, ys = {}, {}
  for i, s in ipairs(samples) do
    xs[i], ys[i] = s.requests / 100000, s.rss_kb
  end
  local slope, icept = M.fit(xs, ys)
  local span = xs[#xs] - xs[1]
  local first = ys[1]
  local third = math.max(1, #ys // 3)
  local spread = 0
  for i = 1, #xs do spread = math.max(spread, math.abs(ys[i] - (icept + slope * xs[i]))) end
  local trend = slope * span * 100 / first
  return {
    slope_kb_per_100k = slope,
    trend_pct = trend,
    end_delta_kb = mean(ys, #ys - third + 1, #ys) - mean(ys, 1, third),
    spread_kb = spread,
    first_kb = first,
    span_requests = samples[#samples].requests - samples[1].requests,
    limit_pct = limit_pct,
    ok = trend <= limit_pct,
  }
end

return M
