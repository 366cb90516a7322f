-- wrk script of load_check (tests/lib/servers.bash): posts the NSPS
-- sample (LOAD_BODY) with the token (LOAD_TOKEN) and counts the statuses
-- of every thread.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	counts = {}
	local f = assert(io.open(os.getenv("LOAD_BODY"), "rb"))
	local body = f:read("*a")
	f:close()
	req = wrk.format("POST", nil, {
		["Authorization"] = "Bearer " .. os.getenv("LOAD_TOKEN"),
		["Content-Type"] = "application/json",
	}, body)
end

function request()
	return req
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
	io.write(string.format("latency_max_us %d\n", latency.max))
	-- Reported, never checked: the machine's noise decides it.
	io.write(string.format("latency_p99_us %d\n",
	    latency:percentile(99)))
end
