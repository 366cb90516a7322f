#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Prometheus metrics: the connector's METRICS_PATH through CGI, then a
# real lighttpd pool (contrib/lighttpd-fastcgi.conf with max-procs 3)
# with a spool, a known mix of answers, a connector killed and
# respawned, one nsps-deliver --once pass, and a real Prometheus that
# scrapes it all with the rules of contrib/prometheus/alerts.yml.

load helper
load lib/servers
load spool-helper

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}
PROM_DIR=${CONTRIB_DIR:?CONTRIB_DIR must name contrib/}/prometheus

# scrape_cgi [NAME=VALUE ...]: GET /metrics through CGI.
scrape_cgi() {
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=/metrics "$@"
}

# value NAME{LABELS} FILE: the sample's value in an exposition.
value() {
	awk -v k="$1" '$1 == k { print $2; found = 1 } END { exit !found }' "$2"
}

# assert_value NAME{LABELS} EXPECTED FILE
assert_value() {
	local got
	got=$(value "$1" "$3") || { echo "no sample $1 in $3" >&2; return 1; }
	[ "$got" = "$2" ] || { echo "$1: expected $2, got $got" >&2; return 1; }
}

@test "metrics: GET is the text exposition, no token needed, promtool-clean" {
	command -v promtool >/dev/null ||
	    skip "promtool is not installed (.ci/deps installs prometheus)"
	local m=$BATS_TEST_TMPDIR/m
	mkdir -p "$m"
	scrape_cgi METRICS_DIR="$m"
	assert_status 200
	assert_header 'Content-Type: text/plain; version=0.0.4'
	assert_header 'Cache-Control: no-store'
	assert_log_line "Metrics scrape GET /metrics: 200"
	printf '%s\n' "$resp_body" > "$m/scrape"
	promtool check metrics < "$m/scrape"
	grep -q '^nsps_build_info{version="[0-9.]*",' "$m/scrape"
	[ "$(stat -c %a "$m/nsps-metrics.v4")" = 600 ]
	# HEAD: the same length, no body.
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=HEAD SCRIPT_NAME=/metrics \
	    METRICS_DIR="$m"
	assert_status 200
	[ -z "$resp_body" ]
	grep -q '^Content-Length: [1-9][0-9]*' <<<"${resp_headers//$'\r'/}"
}

@test "metrics: POST is 405 with Allow; without counters it is 503; paths must differ" {
	local m=$BATS_TEST_TMPDIR/m
	mkdir -p "$m"
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=POST SCRIPT_NAME=/metrics \
	    METRICS_DIR="$m" CONTENT_LENGTH=0
	assert_error 405 VALIDATION_ERROR
	assert_header 'Allow: GET, HEAD'
	assert_log "Rejected POST /metrics: 405 VALIDATION_ERROR: metrics take GET or HEAD"
	scrape_cgi
	assert_error 503 SERVICE_ERROR
	assert_json .error "Metrics unavailable"
	assert_log "no counters: set METRICS_DIR or SPOOL_DIR"
	scrape_cgi METRICS_PATH=/health METRICS_DIR="$m"
	assert_error 500 INTERNAL_ERROR
	assert_log "METRICS_PATH: '/health' is already EVENT_PATH or HEALTH_PATH"
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=/nsps/stats \
	    METRICS_PATH=/stats METRICS_DIR="$m"
	assert_status 200
	grep -q '^nsps_requests_total{status="405"} 1$' <<<"$resp_body"
}

@test "metrics: a counters file of another layout, or a symlink, is refused; events still go" {
	local m=$BATS_TEST_TMPDIR/m
	mkdir -p "$m"
	head -c 100 /dev/zero > "$m/nsps-metrics.v4"
	scrape_cgi METRICS_DIR="$m"
	assert_error 503 SERVICE_ERROR
	assert_log "nsps-metrics.v4: 100 bytes, not"
	assert_log "remove it"
	minimal_event m-1 > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" METRICS_DIR="$m"
	assert_status 202
	rm "$m/nsps-metrics.v4"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$m/nsps-metrics.v4"
	scrape_cgi METRICS_DIR="$m"
	assert_error 503 SERVICE_ERROR
	assert_log "nsps-metrics.v4: open:"
	[ ! -e "$BATS_TEST_TMPDIR/elsewhere" ]
}

@test "metrics: 1,000 random event types leave METRICS_MAX_TYPES series plus other" {
	local m=$BATS_TEST_TMPDIR/m i n sum files=()
	mkdir -p "$m/ev"
	for i in $(seq 1000); do
		printf '{"data":{"event_type":"T%s/%s"},"pb_data":{"account_info":{"bill_status":"open"}}}' \
		    "$RANDOM$RANDOM" "$i" > "$m/ev/$i.json"
		files+=("$m/ev/$i.json")
	done
	post_events METRICS_DIR="$m" METRICS_MAX_TYPES=7 -- "${files[@]}"
	scrape_cgi METRICS_DIR="$m"
	assert_status 200
	printf '%s\n' "$resp_body" > "$m/scrape"
	n=$(grep -c '^nsps_events_total{' "$m/scrape")
	[ "$n" -eq 8 ] || fail_with "$n series of nsps_events_total"
	assert_value 'nsps_events_total{event_type="other"}' 993 "$m/scrape"
	sum=$(awk '/^nsps_events_total\{/ { s += $2 } END { print s }' "$m/scrape")
	[ "$sum" -eq 1000 ]
	assert_value 'nsps_requests_total{status="202"}' 1000 "$m/scrape"
}

@test "metrics: events that run no handler count by result, not in the handler histogram" {
	local s=$BATS_TEST_TMPDIR/spool t id=0
	mkdir -p "$s"
	for t in SIM/Created Account/Unblocked SIM/Updated; do
		id=$((id + 1))
		printf '{"event_id":"r-%s","data":{"event_type":"%s"},"pb_data":{"account_info":{"bill_status":"open"}}}' \
		    "$id" "$t" > "$BATS_TEST_TMPDIR/ev.json"
		post_event "$BATS_TEST_TMPDIR/ev.json" SPOOL_DIR="$s"
		assert_status 202 || return 1
	done
	printf 'SIM/Created ignore\nSIM/Updated /bin/true\n' > "$BATS_TEST_TMPDIR/routes"
	chmod 600 "$BATS_TEST_TMPDIR/routes"
	run --separate-stderr env -u HANDLER "$DELIVER" -d "$s" \
	    -r "$BATS_TEST_TMPDIR/routes" --once
	[ "$status" -eq 0 ] || fail_with "exit $status"
	scrape_cgi SPOOL_DIR="$s"
	printf '%s\n' "$resp_body" > "$BATS_TEST_TMPDIR/scrape"
	assert_value 'nsps_deliveries_total{result="ignored"}' 1 "$BATS_TEST_TMPDIR/scrape"
	assert_value 'nsps_deliveries_total{result="failed"}' 1 "$BATS_TEST_TMPDIR/scrape"
	assert_value 'nsps_deliveries_total{result="done"}' 1 "$BATS_TEST_TMPDIR/scrape"
	assert_value nsps_handler_duration_seconds_count 1 "$BATS_TEST_TMPDIR/scrape"
	assert_value 'nsps_queue_events{state="failed"}' 1 "$BATS_TEST_TMPDIR/scrape"
}

# The pool: the recipe with three processes, a spool, a low type bound.
launch_pool() {
	local port user
	port=$(free_port) || return 1
	user=$(server_user)
	derive_config "$CONTRIB_DIR/lighttpd-fastcgi.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/nsps-connector" \
	    "/run/lighttpd/nsps-connector.sock=$D/run/nsps.sock" \
	    "/etc/nsps/connector.env=$D/nsps.env" || return 1
	sed -i 's/"max-procs" => 2,/"max-procs" => 3,/' "$D/nsps.conf"
	grep -qF '"max-procs" => 3,' "$D/nsps.conf" || return 1
	cat > "$D/lighttpd.conf" <<-CONF
	server.document-root = "$D/htdocs"
	server.bind = "127.0.0.1"
	server.port = $port
	server.errorlog = "$D/run/error.log"
	${user:+server.username = \"$user\"}
	${user:+server.groupname = \"$(id -gn "$user" 2>/dev/null)\"}
	include "$D/nsps.conf"
	CONF
	lighttpd -tt -f "$D/lighttpd.conf" >&2 || return 1
	start_bg lighttpd lighttpd -D -f "$D/lighttpd.conf"
	LIGHTTPD_PID=$LAST_PID
	HOSTPORT=127.0.0.1:$port
	BASE=http://$HOSTPORT/nsps
	wait_http "$BASE/health" "$LAST_PID"
}

setup_file() {
	command -v lighttpd >/dev/null ||
	    skip "lighttpd is not installed (.ci/deps installs it)"
	D=$(make_shared_dir)
	export D
	servers_init "$D"
	connector_files "$D" 65536
	mkdir -p "$D/spool"
	[ -z "$(server_user)" ] || chown "$(server_user)" "$D/spool"
	printf 'SPOOL_DIR=%s\nMETRICS_MAX_TYPES=3\n' "$D/spool" >> "$D/nsps.env"
	retry 3 launch_pool
	export BASE HOSTPORT LIGHTTPD_PID
}

teardown_file() {
	servers_stop_all
	[ -z "${D:-}" ] || rm -rf "$D"
}

# scrape FILE: GET the pool's metrics into FILE.
scrape() {
	curl -fsS -m 5 -o "$1" "$BASE/metrics"
}

# connectors: the pool's processes, one PID a line.
connectors() {
	ps -o pid= --ppid "$LIGHTTPD_PID" | tr -d ' '
}

# wchar PID: bytes the process has written (its answers and log lines).
wchar() {
	awk '$1 == "wchar:" { print $2 }' "/proc/$1/io"
}

# batch PREFIX: the known mix, sent over 8 parallel connections:
# 6 events (3 SIM/Updated, 2 Account/Blocked, 1 Product/Changed), 2
# duplicates, 3 wrong tokens, 2 invalid events, 1 unknown path, 1 body
# over the connector's limit.  Prints the HTTP codes, sorted.
batch() {
	local p=$1 cfg=$D/$1.curl i
	local types=(SIM/Updated SIM/Updated SIM/Updated Account/Blocked \
	    Account/Blocked Product/Changed)
	for i in 1 2 3 4 5 6; do
		printf '{"event_id":"%s-%s","data":{"event_type":"%s"},"pb_data":{"account_info":{"bill_status":"open"}}}' \
		    "$p" "$i" "${types[i - 1]}" > "$D/$p-$i.json"
	done
	printf '{"event_id":"%s-bad","data":{"event_type":"SIM/Updated"}}' "$p" \
	    > "$D/$p-bad.json"
	head -c 70000 /dev/zero | tr '\0' ' ' > "$D/$p-big.json"
	: > "$cfg"
	entry() {	# URL TOKEN FILE
		[ ! -s "$cfg" ] || echo next
		printf 'url = "%s"\noutput = "/dev/null"\nmax-time = 20\n' "$1"
		printf 'write-out = "%%{http_code}\\n"\n'
		printf 'header = "Authorization: Bearer %s"\n' "$2"
		printf 'header = "Content-Type: application/json"\n'
		printf 'data-binary = "@%s"\n' "$3"
	} >> "$cfg"
	for i in 1 2 3 4 5 6; do
		entry "$BASE/process-event" "$TOKEN" "$D/$p-$i.json"
	done
	entry "$BASE/process-event" "$TOKEN" "$D/$p-1.json"
	entry "$BASE/process-event" "$TOKEN" "$D/$p-4.json"
	for i in 1 2 3; do
		entry "$BASE/process-event" wrong-token "$D/$p-$i.json"
	done
	entry "$BASE/process-event" "$TOKEN" "$D/$p-bad.json"
	entry "$BASE/process-event" "$TOKEN" "$D/$p-bad.json"
	entry "$BASE/no-such-path" "$TOKEN" "$D/$p-1.json"
	entry "$BASE/process-event" "$TOKEN" "$D/$p-big.json"
	curl --parallel --parallel-max 8 -s -K "$cfg" 2>/dev/null | sort |
	    tr '\n' ' '
}

@test "metrics: a lighttpd pool of 3 counts every answer exactly, across a respawn" {
	local before after victim i pids kids n=0 p codes
	local expect='200 200 202 202 202 202 202 202 401 401 401 404 413 422 422 '
	scrape "$D/s0" || return 1
	pids=$(connectors)
	[ "$(wc -w <<<"$pids")" -eq 3 ] || fail_with "max-procs 3: $pids"
	for p in $pids; do before="$before $(wchar "$p")"; done
	codes=$(batch a)
	[ "$codes" = "$expect" ] || fail_with "codes: $codes"
	# More than one process answered.
	i=0
	for p in $pids; do
		i=$((i + 1))
		after=$(wchar "$p")
		[ "$after" -gt "$(cut -d' ' -f$((i + 1)) <<<"$before")" ] &&
		    n=$((n + 1)) && victim=$p
	done
	[ "$n" -ge 2 ] || fail_with "only $n of 3 processes answered"
	# One process dies; lighttpd starts another; counting goes on.
	kill -KILL "$victim"
	for i in $(seq 100); do
		kids=$(connectors)
		[ "$(wc -w <<<"$kids")" -eq 3 ] && ! grep -qx "$victim" <<<"$kids" &&
		    break
		sleep 0.1
	done
	! grep -qx "$victim" <<<"$kids" && [ "$(wc -w <<<"$kids")" -eq 3 ] ||
	    fail_with "not respawned: $kids"
	codes=$(batch b)
	[ "$codes" = "$expect" ] || fail_with "codes after respawn: $codes"
	scrape "$D/s1" || return 1
	promtool check metrics < "$D/s1"
	# Twice the mix, plus the first scrape (a 200) itself.
	for s in 200:5 202:12 401:6 404:2 413:2 422:4 400:0 405:0 411:0 \
	    415:0 500:0 503:0 other:0; do
		k="nsps_requests_total{status=\"${s%%:*}\"}"
		[ $(($(value "$k" "$D/s1") - $(value "$k" "$D/s0"))) -eq "${s#*:}" ] ||
		    fail_with "$k: $(value "$k" "$D/s0") then $(value "$k" "$D/s1")" ||
		    return 1
	done
	[ $(($(value nsps_request_duration_seconds_count "$D/s1") - \
	    $(value nsps_request_duration_seconds_count "$D/s0"))) -eq 31 ]
	# METRICS_MAX_TYPES=3: the three types have their series.
	assert_value 'nsps_events_total{event_type="SIM/Updated"}' 6 "$D/s1"
	assert_value 'nsps_events_total{event_type="Account/Blocked"}' 4 "$D/s1"
	assert_value 'nsps_events_total{event_type="Product/Changed"}' 2 "$D/s1"
	assert_value 'nsps_events_total{event_type="other"}' 0 "$D/s1"
	assert_value nsps_store_failures_total 0 "$D/s1"
	assert_value 'nsps_queue_events{state="new"}' 0 "$D/s1"
	# The queue's gauges are nsps-deliver's: none ran yet.
	assert_value nsps_worker_up 0 "$D/s1"
}

@test "metrics: one nsps-deliver --once pass counts into the same scrape" {
	scrape "$D/d0" || return 1
	run --separate-stderr "$DELIVER" -d "$D/spool" --once -- /bin/sh -c \
	    'test "$NSPS_EVENT_TYPE" != Product/Changed'
	[ "$status" -eq 0 ] || fail_with "exit $status"
	scrape "$D/d1" || return 1
	promtool check metrics < "$D/d1"
	assert_value 'nsps_deliveries_total{result="done"}' 10 "$D/d1"
	assert_value 'nsps_deliveries_total{result="failed"}' 2 "$D/d1"
	for r in retry stale ignored timeout; do
		assert_value "nsps_deliveries_total{result=\"$r\"}" 0 "$D/d1" ||
		    return 1
	done
	assert_value nsps_handler_duration_seconds_count 12 "$D/d1"
	assert_value 'nsps_handler_duration_seconds_bucket{le="+Inf"}' 12 "$D/d1"
	assert_value 'nsps_queue_events{state="new"}' 0 "$D/d1"
	assert_value 'nsps_queue_events{state="cur"}' 0 "$D/d1"
	assert_value 'nsps_queue_events{state="retry"}' 0 "$D/d1"
	assert_value 'nsps_queue_events{state="failed"}' 2 "$D/d1"
	assert_value nsps_queue_oldest_age_seconds 0.000 "$D/d1"
	# --once has ended: no worker runs.
	assert_value nsps_worker_up 0 "$D/d1"
	# The connector's counts are untouched, but for the first scrape.
	[ $(($(value 'nsps_requests_total{status="200"}' "$D/d1") - \
	    $(value 'nsps_requests_total{status="200"}' "$D/d0"))) -eq 1 ]
	assert_value 'nsps_requests_total{status="202"}' \
	    "$(value 'nsps_requests_total{status="202"}' "$D/d0")" "$D/d1"
}

# prom_query EXPR: the value of a one-sample instant query.
prom_query() {
	curl -fsS -m 5 "http://$PROM/api/v1/query" --data-urlencode "query=$1" |
	    jq -r '.data.result[0].value[1] // "none"'
}

@test "metrics: a real Prometheus scrapes the pool and fires NspsFailedEvents" {
	command -v prometheus >/dev/null ||
	    skip "prometheus is not installed (.ci/deps installs it)"
	local pport got i q
	pport=$(free_port) || return 1
	PROM=127.0.0.1:$pport
	cp "$PROM_DIR/alerts.yml" "$D/alerts.yml"
	derive_config "$PROM_DIR/prometheus.yml" "$D/prometheus.yml" \
	    "connector1.example:80=$HOSTPORT" "scrape_interval: 15s=scrape_interval: 1s" \
	    "evaluation_interval: 15s=evaluation_interval: 1s"
	promtool check config "$D/prometheus.yml"
	start_bg prometheus prometheus --config.file="$D/prometheus.yml" \
	    --storage.tsdb.path="$D/prom-data" --web.listen-address="$PROM"
	wait_http "http://$PROM/-/ready" "$LAST_PID" 400
	scrape "$D/p0" || return 1
	# Scraped within a few seconds: the same counts as the connector's.
	for i in $(seq 150); do
		# nsps-deliver's series: those of inline delivery have a mode.
		got=$(prom_query 'nsps_deliveries_total{result="done",mode=""}')
		[ "$got" = 10 ] && break
		sleep 0.2
	done
	[ "$got" = 10 ] || fail_with "Prometheus: done=$got" "$(cat "$D/prometheus.err")"
	for k in 'nsps_requests_total{status="202"}' 'nsps_requests_total{status="401"}' \
	    'nsps_requests_total{status="413"}' 'nsps_events_total{event_type="SIM/Updated"}' \
	    'nsps_deliveries_total{result="failed"}' 'nsps_queue_events{state="failed"}'; do
		q=$k
		[[ $k != nsps_deliveries_total* ]] || q=${k%\}},mode=\"\"\}
		got=$(prom_query "$q")
		[ "$got" = "$(value "$k" "$D/p0")" ] ||
		    fail_with "$k: Prometheus $got, scrape $(value "$k" "$D/p0")" || return 1
	done
	[ "$(prom_query 'up{job="nsps-connector"}')" = 1 ]
	# alerts.yml: failed events present fires; the connector is up.
	for i in $(seq 100); do
		got=$(curl -fsS -m 5 "http://$PROM/api/v1/alerts" |
		    jq -r '[.data.alerts[] | select(.state == "firing") | .labels.alertname] | sort | join(" ")')
		[[ " $got " == *" NspsFailedEvents "* ]] && break
		sleep 0.2
	done
	[[ " $got " == *" NspsFailedEvents "* ]] || fail_with "firing: $got"
	[[ " $got " != *" NspsConnectorDown "* ]] || fail_with "firing: $got"
	curl -fsS "http://$PROM/api/v1/alerts" |
	    jq -e '.data.alerts[] | select(.labels.alertname == "NspsFailedEvents") |
		.annotations.summary | test("^2 events on .* --requeue-failed$")'
}

@test "metrics: contrib/prometheus: promtool check rules is clean and every alert is unit tested" {
	command -v promtool >/dev/null ||
	    skip "promtool is not installed (.ci/deps installs prometheus)"
	promtool check rules "$PROM_DIR/alerts.yml"
	(cd "$PROM_DIR" && promtool test rules alerts.test.yml)
	# Each alert fires somewhere in the tests and is asked not to.
	for a in $(awk '$1 == "-" && $2 == "alert:" { print $3 }' "$PROM_DIR/alerts.yml"); do
		grep -A2 "alertname: $a\$" "$PROM_DIR/alerts.test.yml" |
		    grep -q 'exp_alerts: \[\]' || fail_with "$a never tested not firing" || return 1
		grep -A2 "alertname: $a\$" "$PROM_DIR/alerts.test.yml" |
		    grep -q 'exp_alerts:$' || fail_with "$a never tested firing" || return 1
	done
}

@test "metrics: the recipe lets only the listed hosts read the metrics path" {
	local port user
	port=$(free_port) || return 1
	user=$(server_user)
	mkdir -p "$D/deny"
	[ -z "$user" ] || chown "$user" "$D/deny"
	# The recipe with loopback taken off the list of monitoring hosts.
	derive_config "$D/nsps.conf" "$D/deny/nsps.conf" \
	    '127\.0\.0\.1|=' "$D/run/nsps.sock=$D/deny/nsps.sock" || return 1
	sed -e "s|server.port = .*|server.port = $port|" \
	    -e "s|$D/nsps.conf|$D/deny/nsps.conf|" \
	    -e "s|$D/run/error.log|$D/deny/error.log|" \
	    "$D/lighttpd.conf" > "$D/deny/lighttpd.conf"
	start_bg lighttpd-deny lighttpd -D -f "$D/deny/lighttpd.conf"
	wait_http "http://127.0.0.1:$port/nsps/health" "$LAST_PID"
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nsps/metrics"
	[ "$output" = 403 ] || fail_with "metrics from a host not listed: $output"
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nsps/health"
	[ "$output" = 200 ]
	run curl -s -o /dev/null -w '%{http_code}' "$BASE/metrics"
	[ "$output" = 200 ]
}
