-- Copyright (c) 2026 The nsps-connector authors
-- SPDX-License-Identifier: ISC (see LICENSE)
-- wrk script for the benchmark: POSTs the NSPS documentation's sample
-- event (BENCH_BODY) with the Bearer token (BENCH_TOKEN), both taken
-- from the environment so the token never appears on a command line.
-- At the end it prints one machine-readable line for bench/run.

local token = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
local path = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
local f = assert(io.open(path, "rb"))

wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

-- wrk counts statuses from 400 up as errors.status; bench/run checks
-- beforehand that each URL answers 202 from the FastCGI program.
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d " ..
	    "p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
	    summary.requests, summary.duration, latency:percentile(50),
	    latency:percentile(99), e.connect, e.read, e.write, e.status,
	    e.timeout))
end
