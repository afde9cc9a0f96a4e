-- wrk: POST /mettre_a_jour_donnees, a uuid4 event_id per event (as real dispensers send), rotating over the
-- dispenser tokens. Every answer must be 200: the count of others is printed for bench/common.py's wrk().
-- args: run_prefix [batch_size] [n_dispensers]  (run_prefix only names the run in wrk's command line)
local counter = 0
local random = math.random

-- The status check (setup, response, done) lives beside this script.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "checked.lua")

function init(args)
  batch = tonumber(args[2] or "1")
  ndisp = tonumber(args[3] or "100")
  expected, answered, unexpected, first_bad = 200, 0, 0, 0
  -- Seeded from the OS per thread and per run, so no two runs send the same ids (a duplicate costs less).
  local f = assert(io.open("/dev/urandom", "rb"))
  local seed = 0
  for _, b in ipairs({f:read(6):byte(1, 6)}) do seed = seed * 256 + b end
  f:close()
  math.randomseed(seed)
end

local function uuid4()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff), random(0, 0xfff), random(0x8000, 0xbfff), random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff))
end

local function event()
  return '{"gel_used":1.5,"hands_detected":1,"event_id":"' .. uuid4() .. '"}'
end

function request()
  counter = counter + 1
  local body
  if batch == 1 then
    body = event()
  else
    local items = {}
    for i = 1, batch do items[i] = event() end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = string.format("Bearer tok-d%03d-bench-token", counter % ndisp)
  return wrk.format("POST", "/mettre_a_jour_donnees", headers, body)
end
