-- wrk script: GET /visits with the www Host header; counts the 2xx
-- answers (each one a committed increment the client saw acknowledged)
-- and the highest count any of them reported.
wrk.headers["Host"] = "www.foobar.com"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  acked = 0
  highest = 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    acked = acked + 1
    local n = tonumber(string.match(body, '"visits": *(%d+)'))
    if n and n > highest then highest = n end
  end
end

function done(summary, latency, requests)
  local a, h = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    local th = t:get("highest")
    if th > h then h = th end
  end
  io.write(string.format("acked %d\nhighest %d\n", a, h))
end
