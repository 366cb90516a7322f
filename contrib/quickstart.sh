#!/usr/bin/env bash
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Quick start: install what the build needs (through sudo when not root),
# build, and run the connector behind lighttpd on 127.0.0.1:8080 with a
# demo token, in the foreground.  Ctrl-C stops it.
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
trap 'rm -rf "$dir"' EXIT
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
	"bin-environment" => ( "API_TOKEN" => "$token" ),
	"bin-copy-environment" => ( "PATH" ),
)) )
CONF
cat <<MSG
nsps-connector is listening on http://127.0.0.1:$port/process-event
with the demo token '$token'.  Its log lines appear below.  Try:

  curl -i -H 'Authorization: Bearer $token' \\
       -H 'Content-Type: application/json' \\
       --data-binary @$PWD/tests/fixtures/nsps-doc-sample.json \\
       http://127.0.0.1:$port/process-event

  curl -i http://127.0.0.1:$port/health

Press Ctrl-C to stop.
MSG
lighttpd -D -f "$dir/lighttpd.conf"
