-- common.lua: fixed-count request engine shared by the phase scripts (wrk 4.1, LuaJIT).
--
-- A phase script defines make_request(i, item) and optionally on_response(status, body),
-- then loads this file.  Environment set by bench/wrkrun.py:
--   BENCH_WORKDIR  directory holding items-<tid>.txt (one item per request of thread <tid>);
--                  this script writes done-<tid> when a thread has its quota and result.txt in done()
--   BENCH_TOKEN    optional X-Auth-Token value
--   BENCH_EXPECT   the expected HTTP status (anything else is counted as an error)
-- Each thread sends exactly #items requests: delay() hands out one reservation per request
-- and parks the connection (1 h timer) once the quota is reserved; the last response stops
-- the thread.  wrk's main thread only wakes on SIGINT, which the harness sends once every
-- done-<tid> file exists.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

-- Monotonic seconds (same clock as Python's time.monotonic()).
function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local workdir = os.getenv("BENCH_WORKDIR")
local token = os.getenv("BENCH_TOKEN") or ""
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local PARK_MS = 3600000
local all_threads = {}

-- Main state: number the threads 1..T before their init() runs.
function setup(thread)
  all_threads[#all_threads + 1] = thread
  thread:set("tid", #all_threads)
end

-- Thread state: load this thread's items and reset the counters.
function init(args)
  items = {}
  for line in io.lines(workdir .. "/items-" .. tid .. ".txt") do
    items[#items + 1] = line
  end
  quota = #items
  primed = (tid ~= 1)   -- wrk calls request() once on thread 1 to verify it; not sent
  reserved, issued, completed, ok, nerr, walks = 0, 0, 0, 0, 0, 0
  ids, errs, statuses = {}, {}, {}
  t0, t1 = 0, 0
  headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  if token ~= "" then headers["X-Auth-Token"] = token end
  if quota == 0 then mark_done() end
end

-- Write the done-<tid> marker the harness polls for.
function mark_done()
  local f = io.open(workdir .. "/done-" .. tid, "w")
  f:write("done\n")
  f:close()
end

-- One reservation per request; park the connection once the quota is reserved.
function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return PARK_MS
end

function request()
  if not primed then
    primed = true
    return wrk.format("GET", "/")
  end
  issued = issued + 1
  if issued > quota then   -- only after a socket error + reconnect; not an op
    return wrk.format("GET", "/")
  end
  if t0 == 0 then t0 = now() end
  return make_request(issued, items[issued])
end

-- Body text cut to one short line, for error reports.
function snippet(body)
  return ((body or ""):sub(1, 300):gsub("[\r\n]", " "))
end

-- The top-level "id" of a create response, if any.
function body_id(body)
  return body:match('"id"%s*:%s*"([^"]+)"')
end

function response(status, hdrs, body)
  completed = completed + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status == expect then
    ok = ok + 1
  else
    nerr = nerr + 1
    if #errs < 5 then errs[#errs + 1] = status .. " " .. snippet(body) end
  end
  if on_response then on_response(status, body) end
  if completed == quota then
    t1 = now()
    mark_done()
    wrk.thread:stop()
  end
end

-- Main state, after SIGINT: write everything the harness needs to result.txt.
function done(summary, latency, requests)
  local f = io.open(workdir .. "/result.txt", "w")
  f:write(string.format("latency %d %d %d %d %.1f\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
  local e = summary.errors
  f:write(string.format("summary %d %d %d %d %d %d %d\n", summary.requests, e.status,
    e.connect, e.read, e.write, e.timeout, summary.duration))
  for i, t in ipairs(all_threads) do
    f:write(string.format("thread %d %d %d %d %d %.6f %.6f %d\n", i, t:get("quota"),
      t:get("completed"), t:get("ok"), t:get("nerr"), t:get("t0"), t:get("t1"), t:get("walks")))
    for status, n in pairs(t:get("statuses")) do
      f:write(string.format("status %d %d\n", status, n))
    end
    for _, id in ipairs(t:get("ids")) do f:write("id " .. id .. "\n") end
    for _, err in ipairs(t:get("errs")) do f:write("err " .. err .. "\n") end
  end
  f:close()
end
