-- list_pages.lua: walk GET /v2.0/segments?limit=L via segments_links rel=next; item = limit.
-- Each connection follows a walk; a page without a next link completes one walk.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
queue = {}

function make_request(i, limit)
  local path = table.remove(queue, 1) or ("/v2.0/segments?limit=" .. limit)
  return wrk.format("GET", path, headers)
end

-- Path+query of the rel=next link in a list body, or nil.
function next_link(body)
  local links = body:match('"segments_links"%s*:%s*(%b[])')
  if not links then return nil end
  for obj in links:gmatch("%b{}") do
    if obj:match('"rel"%s*:%s*"next"') then
      local href = obj:match('"href"%s*:%s*"([^"]*)"') or ""
      href = href:gsub("\\/", "/"):gsub("\\u0026", "&")
      return (href:gsub("^%a+://[^/]+", ""))
    end
  end
  return nil
end

function on_response(status, body)
  local nxt = status == 200 and next_link(body)
  if nxt then queue[#queue + 1] = nxt else walks = walks + 1 end
end

dofile(dir .. "common.lua")
