-- create_networks.lua: POST /v2.0/networks, one per item (item = network name); collects ids.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, name)
  return wrk.format("POST", "/v2.0/networks", headers,
    '{"network": {"name": "' .. name .. '"}}')
end

function on_response(status, body)
  if status == 201 then ids[#ids + 1] = body_id(body) end
end

dofile(dir .. "common.lua")
