-- wrk script: GET with the www Host header, counting answers by status;
-- 503s that carry Retry-After (the maintenance page) are counted apart.
wrk.headers["Host"] = "www.foobar.com"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  local key = tostring(status)
  if status == 503 and (headers["Retry-After"] or headers["retry-after"]) then
    key = "maintenance"
  end
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do
      total[k] = (total[k] or 0) + v
    end
  end
  for k, v in pairs(total) do
    io.write(string.format("count %s %d\n", k, v))
  end
  local e = summary.errors
  io.write(string.format("socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
end
