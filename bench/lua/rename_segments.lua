-- rename_segments.lua: PUT /v2.0/segments/<id> {"segment": {"name": ...}}; item = "<id> <name>".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, item)
  local id, name = item:match("^(%S+) (%S+)$")
  return wrk.format("PUT", "/v2.0/segments/" .. id, headers,
    '{"segment": {"name": "' .. name .. '"}}')
end

dofile(dir .. "common.lua")
