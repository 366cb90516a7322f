# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# A private PostgreSQL for the suites that use DATABASE_URL: its own
# cluster listening only on a unix socket in its own directory (so no
# port can clash), run by an unprivileged user, stopped by pg_ctl.

# pg_start: initdb and start; sets PGHOST, PGPORT, PGUSER, PGDATABASE,
# PG_DIR and PG_CTL.  Skips the test when no server is installed.
pg_start() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$bin" ] && [ -x "$bin/initdb" ] ||
	    skip "PostgreSQL server binaries not installed (.ci/deps installs postgresql)"
	command -v psql >/dev/null || skip "psql not installed"
	PG_AS=()
	PG_DIR=$(mktemp -d /tmp/nsps-pg.XXXXXX)
	chmod 755 "$PG_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 ||
		    skip "running as root and there is no postgres user to run the server"
		chown postgres "$PG_DIR"
		PG_AS=(runuser -u postgres --)
	fi
	"${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres \
	    --no-sync > "$PG_DIR/initdb.log" 2>&1 ||
	    { cat "$PG_DIR/initdb.log" >&2; return 1; }
	pg_ctl_init
	export PGHOST=$PG_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
	pg_up
}

# pg_ctl_init: PG_CTL, pg_ctl as the server's user, for the cluster
# in PG_DIR (bats does not carry arrays from setup_file to the tests).
pg_ctl_init() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	PG_CTL=("$bin/pg_ctl" -D "$PG_DIR/data")
	# psql itself, not Debian's wrapper (a Perl script that picks a
	# cluster): 17 ms an exec here instead of 65, and the suites run
	# hundreds of queries.
	case :$PATH: in
	*:"$bin":*) ;;
	*) PATH=$bin:$PATH; export PATH ;;
	esac
	[ "$(id -u)" -ne 0 ] || PG_CTL=(runuser -u postgres -- "${PG_CTL[@]}")
}

# pg_up: starts the cluster made by pg_start (again).
pg_up() {
	"${PG_CTL[@]}" -l "$PG_DIR/server.log" -w -t 30 \
	    -o "-k $PG_DIR -c listen_addresses= -p 5432 -c fsync=off -c max_connections=100" \
	    start > /dev/null 3>&- || { tail "$PG_DIR/server.log" >&2; return 1; }
}

# pg_down [MODE]: stops it, immediate by default (a crash, as far as
# the clients can tell).
pg_down() {
	"${PG_CTL[@]}" -m "${1:-immediate}" -t 30 stop > /dev/null 2>&1 || true
}

# pg_stop: stops it for good and removes it.
pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	pg_down
	rm -rf "$PG_DIR"
	PG_DIR=
}

# pg_db NAME: a fresh database; sets DATABASE_URL for it, as postgres.
pg_db() {
	psql -X -q -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" ||
	    return 1
	export DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=$1"
	export PGDATABASE=$1
}

# pg_sql SQL: one value, unaligned.
pg_sql() {
	psql -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}
