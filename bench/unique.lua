-- Copyright (c) 2026 The nsps-connector authors
-- SPDX-License-Identifier: ISC (see LICENSE)
-- wrk script for bench/durable: POSTs the sample event (BENCH_BODY) with
-- the token (BENCH_TOKEN), each request with an event_id of its own,
-- "<BENCH_RUN_ID>-<thread>-<counter>", so that a spool stores every one.
-- The body is cut around the sample's id once; a request costs one
-- concatenation and wrk.format().  Answers other than 202 are counted
-- per thread; at the end one machine-readable line for bench/durable.

local token = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
local path = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
local run = assert(os.getenv("BENCH_RUN_ID"), "BENCH_RUN_ID is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()
local head, tail = body:match('^(.-"event_id"%s*:%s*")[^"]*(".*)$')
assert(head, "no event_id in " .. path)

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

-- setup() runs in the main state, once per thread, before init().
local threads = {}
function setup(thread)
	threads[#threads + 1] = thread
	thread:set("tid", #threads)
end

local prefix
local n = 0
ok = 0
other = 0

function init(args)
	prefix = head .. run .. "-" .. tid .. "-"
end

function request()
	n = n + 1
	return wrk.format(nil, nil, nil, prefix .. n .. tail)
end

function response(status, headers, body)
	if status == 202 then
		ok = ok + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	local good, bad = 0, 0
	for _, t in ipairs(threads) do
		good = good + t:get("ok")
		bad = bad + t:get("other")
	end
	io.write(string.format("DURABLE requests=%d ok=%d other=%d " ..
	    "duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d " ..
	    "write=%d status=%d timeout=%d\n", summary.requests, good, bad,
	    summary.duration, latency:percentile(50),
	    latency:percentile(99), e.connect, e.read, e.write, e.status,
	    e.timeout))
end
