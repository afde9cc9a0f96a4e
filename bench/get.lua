-- wrk: GET the URL given on the command line (headers from -H); every answer must have the expected status.
-- args: expected_status
-- The status check (setup, response, done) lives beside this script.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "checked.lua")

function init(args)
  expected = tonumber(args[1] or "200")
  answered, unexpected, first_bad = 0, 0, 0
end
