#!/usr/bin/env bash
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Quick start: install what the build needs (through sudo when not root),
# build, and run the whole product on 127.0.0.1 in the foreground: the
# connector behind lighttpd on PORT (8080) with a demo token, storing
# each accepted event in a spool, and nsps-deliver beside it handing
# each stored event to the log-append handler.  Everything lives in one
# temporary directory, removed at the end.  Ctrl-C stops it all.
set -eu
cd "$(dirname "$0")/.."
# lighttpd is in /usr/sbin, which a user's PATH may lack.
case :$PATH: in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac
port=${PORT:-8080}
token=${DEMO_TOKEN:-demo-token}

bash .ci/deps
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make

dir=$(mktemp -d)
lighttpd_pid=
deliver_pid=
# stop: ends the two servers by their PIDs, then removes the directory.
stop() {
	trap - EXIT INT TERM
	[ -z "$lighttpd_pid" ] || kill "$lighttpd_pid" 2>/dev/null || true
	[ -z "$deliver_pid" ] || kill "$deliver_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap stop EXIT
trap 'echo; echo "Stopping."; exit 0' INT TERM

spool=$dir/spool
log=$dir/events.log
mkdir -m 0700 "$spool"
: > "$log"
cat > "$dir/lighttpd.conf" <<CONF
server.document-root = "$dir"
server.bind = "127.0.0.1"
server.port = $port
server.modules = ( "mod_fastcgi" )
# The connector's own limit is 2 MiB; lighttpd counts in KiB.
server.max-request-size = 2048
fastcgi.server = ( "/" => ((
	"socket" => "$dir/fcgi.sock",
	"bin-path" => "$PWD/nsps-connector",
	"check-local" => "disable",
	"max-procs" => 2,
	"bin-environment" => (
		"API_TOKEN" => "$token",
		"SPOOL_DIR" => "$spool",
	),
	"bin-copy-environment" => ( "PATH" ),
)) )
CONF

lighttpd -D -f "$dir/lighttpd.conf" &
lighttpd_pid=$!
# The handler inherits nsps-deliver's environment: NSPS_LOG_FILE says
# where log-append writes.
NSPS_LOG_FILE=$log ./nsps-deliver -d "$spool" -- "$PWD/contrib/handlers/log-append" &
deliver_pid=$!

cat <<MSG

nsps-connector is listening on http://127.0.0.1:$port/process-event
with the demo token '$token'; it stores each accepted event in
  $spool
and nsps-deliver hands each one to contrib/handlers/log-append, which
appends a line (event_id, event type, bill status, the JSON) to
  $log
Both programs' log lines appear below.  In another terminal, send the
sample event:

  curl -i -H 'Authorization: Bearer $token' \\
       -H 'Content-Type: application/json' \\
       --data-binary @$PWD/tests/fixtures/nsps-doc-sample.json \\
       http://127.0.0.1:$port/process-event

then see where it landed, and the spool's view of it (one event done):

  cat $log
  $PWD/nsps-deliver -d $spool --stats

Sending it again answers 200 "Event already accepted".  Also:

  curl -i http://127.0.0.1:$port/health
  curl -s http://127.0.0.1:$port/metrics

Press Ctrl-C to stop both and remove $dir.
MSG
# Whichever of the two ends first ends the quick start.
wait -n "$lighttpd_pid" "$deliver_pid" || true
echo "quickstart: a server stopped; stopping the other" >&2
exit 1
