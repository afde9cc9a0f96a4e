-- wrk: GET the URL given on the command line (headers from -H); every answer must have the expected status.
-- args: expected_status
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expected = tonumber(args[1] or "200")
  answered, unexpected, first_bad = 0, 0, 0
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
