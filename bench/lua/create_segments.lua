-- create_segments.lua: POST /v2.0/segments (vxlan, server-allocated id); item = network id.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, network_id)
  return wrk.format("POST", "/v2.0/segments", headers,
    '{"segment": {"network_id": "' .. network_id .. '", "network_type": "vxlan"}}')
end

function on_response(status, body)
  if status == 201 then ids[#ids + 1] = body_id(body) end
end

dofile(dir .. "common.lua")
