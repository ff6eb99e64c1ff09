-- delete.lua: DELETE <path>; item = resource path, e.g. /v2.0/segments/<id>.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, path)
  return wrk.format("DELETE", path, headers)
end

dofile(dir .. "common.lua")
