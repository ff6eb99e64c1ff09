-- post_json.lua: POST a JSON body; item = "<path> <body on one line>".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function make_request(i, item)
  local path, body = item:match("^(%S+) (.*)$")
  return wrk.format("POST", path, headers, body)
end

function on_response(status, body)
  if status == 201 then ids[#ids + 1] = body_id(body) end
end

dofile(dir .. "common.lua")
