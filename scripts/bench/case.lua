-- One wrk script for every benchmark case, configured from the environment so that the
-- command line in the report is the whole story (headers come from wrk's own -H):
--
--   BENCH_METHOD   request method (default GET)
--   BENCH_BODY     request body; every "{n}" becomes a per-thread counter, so each write
--                  really changes something
--   BENCH_RESULT   file that done() appends one tab-separated line to:
--                  requests, duration_us, http_errors (status >= 400), socket_errors,
--                  p50_us, p99_us

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")

wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
  if string.find(body, "{n}", 1, true) then
    local threads = 0
    setup = function(thread)
      threads = threads + 1
      thread:set("thread_id", threads)
    end
    local n = 0
    request = function()
      n = n + 1
      local text = string.gsub(body, "{n}", (thread_id or 0) .. "x" .. n)
      return wrk.format(nil, nil, nil, text)
    end
  end
end

done = function(summary, latency, _)
  local path = os.getenv("BENCH_RESULT")
  if path == nil or path == "" then
    return
  end
  local errors = summary.errors
  local file = assert(io.open(path, "a"))
  file:write(string.format("%d\t%d\t%d\t%d\t%d\t%d\n",
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
  file:close()
end
