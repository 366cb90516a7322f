-- wrk script for tests/soak.bats: rotates valid (202), wrong-token
-- (401), invalid-event (422) and over-limit (413) requests and counts
-- the statuses of every thread.
local threads = {}
local token = os.getenv("SOAK_TOKEN")

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	counts = {}
	local valid = '{"event_id":"soak-1","data":{"event_type":"SIM/Updated"},' ..
	    '"pb_data":{"account_info":{"bill_status":"open"}}}'
	local invalid = '{"data":{"event_type":"SIM/Updated"},"pb_data":{}}'
	local big = '{"pad":"' .. string.rep("x", 5000) .. '"}'
	local function post(auth, body)
		return wrk.format("POST", "/process-event", {
			["Authorization"] = "Bearer " .. auth,
			["Content-Type"] = "application/json",
		}, body)
	end
	reqs = {
		post(token, valid),
		post("wrong-" .. token, valid),
		post(token, invalid),
		post(token, big),
	}
	n = 0
end

function request()
	n = n + 1
	return reqs[(n % #reqs) + 1]
end

function response(status, headers, body)
	counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		for s, c in pairs(t:get("counts")) do
			total[s] = (total[s] or 0) + c
		end
	end
	for s, c in pairs(total) do
		io.write(string.format("status %d %d\n", s, c))
	end
	local e = summary.errors
	io.write(string.format("requests %d\nerrors %d %d %d %d %d\n",
	    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
	io.write(string.format("latency_p99_us %d\n", latency:percentile(99)))
end
