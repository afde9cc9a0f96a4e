-- wrk: the status check shared by get.lua and post.lua. Every answer must have the status in the global
-- `expected` (set by the script's init); the count of others is printed for bench/common.py's wrk().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= expected then
    unexpected = unexpected + 1
    if first_bad == 0 then first_bad = status end
  end
end

function done(summary, latency, requests)
  local n, bad, first = 0, 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("answered")
    bad = bad + t:get("unexpected")
    if first == 0 then first = t:get("first_bad") end
  end
  io.write(string.format("Unexpected statuses: %d of %d (first: %d)\n", bad, n, first))
end
