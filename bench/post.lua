-- wrk: POST /mettre_a_jour_donnees with a unique event_id per request, rotating over 100 dispenser tokens.
-- args: run_prefix [batch_size] [n_dispensers]
local counter = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  prefix = args[1] or "run"
  batch = tonumber(args[2] or "1")
  ndisp = tonumber(args[3] or "100")
end

function request()
  counter = counter + 1
  local d = counter % ndisp
  local base = prefix .. "-" .. tid .. "-" .. counter
  local body
  if batch == 1 then
    body = '{"gel_used":1.5,"hands_detected":1,"event_id":"' .. base .. '"}'
  else
    local items = {}
    for i = 1, batch do
      items[i] = '{"gel_used":1.5,"hands_detected":1,"event_id":"' .. base .. "-" .. i .. '"}'
    end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = string.format("Bearer tok-d%03d-bench", d)
  return wrk.format("POST", "/mettre_a_jour_donnees", headers, body)
end
