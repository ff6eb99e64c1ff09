-- get_path.lua: GET <path>; item = path (the load-generator ceiling check, e.g. GET /).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, path)
  return wrk.format("GET", path, headers)
end

dofile(dir .. "common.lua")
