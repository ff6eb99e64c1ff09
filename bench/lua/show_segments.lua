-- show_segments.lua: GET /v2.0/segments/<id>; item = segment id.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, id)
  return wrk.format("GET", "/v2.0/segments/" .. id, headers)
end

dofile(dir .. "common.lua")
