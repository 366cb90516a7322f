# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Starting and stopping real servers for the bats suites: a free port on
# 127.0.0.1, processes started in their own process group with their
# PIDs recorded, a bounded readiness poll with curl, and a stop that
# takes down exactly what was started (also when a test failed).
#
# A suite calls servers_init once (in setup_file, or in a test), start_bg
# or a launcher below for each daemon, and servers_stop_all in
# teardown_file (or teardown).  bench/run uses the same functions.

# Web servers live in sbin, which an ordinary user's PATH may lack.
case :$PATH: in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac

# servers_init DIR: DIR holds the PID list and the servers' files.
servers_init() {
	SERVERS_DIR=$1
	SERVERS_PIDS=$SERVERS_DIR/pids
	mkdir -p "$SERVERS_DIR"
	: > "$SERVERS_PIDS"
	export SERVERS_DIR SERVERS_PIDS
}

# port_in_use PORT: the kernel's tables hold a socket on that local port,
# in any state.
port_in_use() {
	local hex
	hex=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	    awk -v p=":$hex" 'substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}

# free_port: prints a port on 127.0.0.1 that nothing uses right now.
# Chosen at random below the kernel's ephemeral range, so that client
# sockets do not take it between now and the server's bind.
free_port() {
	local port i
	for i in $(seq 1 100); do
		port=$((20000 + RANDOM % 12000))
		port_in_use "$port" && continue
		# Nothing answers on it either.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# start_bg NAME CMD [ARGS...]: runs CMD in the background, in a process
# group of its own (so its children can be stopped with it), stdout and
# stderr to $SERVERS_DIR/NAME.out and NAME.err.  Prints nothing; the PID
# is recorded and also left in $LAST_PID.
start_bg() {
	local name=$1
	shift
	# fd 3 is bats' own: a daemon holding it would hold up the suite.
	setsid "$@" > "$SERVERS_DIR/$name.out" 2> "$SERVERS_DIR/$name.err" \
	    < /dev/null 3>&- &
	LAST_PID=$!
	record_pid "$LAST_PID" "$name"
}

# record_pid PID NAME: a process started some other way (a daemon that
# forked, say), to be stopped with the rest.
record_pid() {
	echo "$1 $2" >> "$SERVERS_PIDS"
}

# forget_pid PID: its starter has stopped PID and waited for it; the
# number may be reused, so it is not signalled again.
forget_pid() {
	sed -i "/^$1 /d" "$SERVERS_PIDS"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$state" ] && [[ $state != Z* ]]
}

# wait_http URL PID [TRIES]: polls URL with curl every 0.05 s until any
# HTTP answer comes back (at most TRIES times, default 100, so 5 s),
# failing early when PID has died.  The server's stderr is shown on
# failure.
wait_http() {
	local url=$1 pid=$2 tries=${3:-100} code
	while [ "$tries" -gt 0 ]; do
		code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url") || :
		[ "$code" != 000 ] && [ -n "$code" ] && return 0
		alive "$pid" || break
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "wait_http: no answer from $url (pid $pid)" >&2
	tail -n 20 "$SERVERS_DIR"/*.err "$SERVERS_DIR"/*.log \
	    "$SERVERS_DIR"/run/*.log >&2 2>/dev/null
	return 1
}

# wait_file PATH PID [TRIES]: like wait_http, for a socket or file.
wait_file() {
	local path=$1 pid=$2 tries=${3:-100}
	while [ "$tries" -gt 0 ]; do
		[ -e "$path" ] && return 0
		alive "$pid" || break
		sleep 0.05
		tries=$((tries - 1))
	done
	echo "wait_file: $path did not appear (pid $pid)" >&2
	return 1
}

# stop_pid PID: SIGTERM to its process group, up to 2 s for it to go,
# then SIGKILL.  Only ever signals the group that start_bg created.
stop_pid() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null ||
	    return 0
	for i in $(seq 1 40); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL -- "-$pid" 2>/dev/null || :
	wait "$pid" 2>/dev/null || :
	return 0
}

# servers_stop_all: stops every recorded process group, newest first.
servers_stop_all() {
	local pid name
	[ -n "${SERVERS_PIDS:-}" ] && [ -f "$SERVERS_PIDS" ] || return 0
	tac "$SERVERS_PIDS" | while read -r pid name; do
		stop_pid "$pid"
	done
	: > "$SERVERS_PIDS"
}

# retry N CMD...: runs CMD up to N times until it succeeds (a port taken
# between free_port and bind is the usual reason for a second try).
# Only what a failed try started is stopped.
retry() {
	local n=$1 i before
	shift
	for i in $(seq 1 "$n"); do
		before=$(wc -l < "$SERVERS_PIDS")
		"$@" && return 0
		tail -n "+$((before + 1))" "$SERVERS_PIDS" | tac |
		    while read -r pid name; do
			stop_pid "$pid"
		done
		sed -i "$((before + 1)),\$d" "$SERVERS_PIDS"
	done
	return 1
}

# server_user: prints the user a server must drop to when the suite
# runs as root (Apache and nginx refuse or misbehave as root), empty
# otherwise.
server_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	if id www-data >/dev/null 2>&1; then
		echo www-data
	else
		echo nobody
	fi
}

# make_shared_dir: a fresh directory every user can traverse, for
# servers that drop privileges and must still reach the binary, the
# token file and the sockets.  bats' own temporary directories are
# private to the user running the tests.
make_shared_dir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/nsps-srv.XXXXXX") || return 1
	chmod 755 "$d"
	echo "$d"
}

# derive_config [-d SEP] SRC DST OLD=NEW...: DST is SRC with each OLD
# string replaced by NEW (ports, paths, user).  Each OLD must occur in
# SRC, so a recipe that changes under the test fails it rather than going
# untested.  -d: the pairs are OLD, SEP, NEW, for an OLD that holds "=".
derive_config() {
	local sep== src dst pair old new text
	if [ "$1" = -d ]; then
		sep=$2
		shift 2
	fi
	src=$1 dst=$2
	shift 2
	text=$(cat "$src") || return 1
	for pair in "$@"; do
		old=${pair%%"$sep"*}
		new=${pair#*"$sep"}
		[[ $text == *"$old"* ]] || {
			echo "derive_config: '$old' not in $src" >&2
			return 1
		}
		text=${text//"$old"/"$new"}
	done
	printf '%s\n' "$text" > "$dst"
}

# connector_files DIR [MAX_BODY_BYTES]: what every recipe points at, in
# DIR: a copy of the binary the web server's user can run, the token
# file (readable by that user only) and the dotenv file naming it.
connector_files() {
	local dir=$1 max=${2:-} user
	user=$(server_user)
	install -m 755 "$NSPS_CONNECTOR" "$dir/nsps-connector" || return 1
	printf '%s\n' "$TOKEN" > "$dir/token"
	chmod 640 "$dir/token"
	{
		echo "# written by the test suite"
		echo "API_TOKEN_FILE=$dir/token"
		[ -z "$max" ] || echo "MAX_BODY_BYTES=$max"
	} > "$dir/nsps.env"
	chmod 640 "$dir/nsps.env"
	mkdir -p "$dir/run" "$dir/htdocs"
	if [ -n "$user" ]; then
		chgrp "$(id -gn "$user")" "$dir/token" "$dir/nsps.env" || return 1
		chown "$user" "$dir/run" || return 1
	fi
}

# lighttpd_conf [-u] NAME PORT SNIPPET [LINE...]: writes
# $SERVERS_DIR/NAME.conf, a minimal lighttpd on 127.0.0.1:PORT with each
# LINE, then SNIPPET included; its error log is run/NAME-error.log.  -u:
# it drops to server_user's account (and opens the log after that).
lighttpd_conf() {
	local user=
	if [ "$1" = -u ]; then
		user=$(server_user)
		shift
	fi
	local name=$1 port=$2 snippet=$3 d=$SERVERS_DIR
	shift 3
	mkdir -p "$d/htdocs" "$d/run"
	[ -z "$user" ] || chown "$user" "$d/run" || return 1
	{
		echo "server.document-root = \"$d/htdocs\""
		echo 'server.bind = "127.0.0.1"'
		echo "server.port = $port"
		echo "server.errorlog = \"$d/run/$name-error.log\""
		if [ -n "$user" ]; then
			echo "server.username = \"$user\""
			echo "server.groupname = \"$(id -gn "$user")\""
		fi
		[ "$#" -eq 0 ] || printf '%s\n' "$@"
		echo "include \"$snippet\""
	} > "$d/$name.conf"
}

# lighttpd_start [-u] NAME PATH SNIPPET [LINE...]: lighttpd_conf on a free
# port, checked, started in the foreground and polled at PATH until it
# answers.  Sets LIGHTTPD_PORT and LIGHTTPD_PID.  Variables set on the
# call are in lighttpd's environment.
lighttpd_start() {
	local u=
	if [ "$1" = -u ]; then
		u=-u
		shift
	fi
	local name=$1 path=$2
	shift 2
	LIGHTTPD_PORT=$(free_port) || return 1
	lighttpd_conf $u "$name" "$LIGHTTPD_PORT" "$@" || return 1
	lighttpd -tt -f "$SERVERS_DIR/$name.conf" >&2 || return 1
	start_bg "$name" lighttpd -D -f "$SERVERS_DIR/$name.conf"
	LIGHTTPD_PID=$LAST_PID
	wait_http "http://127.0.0.1:$LIGHTTPD_PORT$path" "$LIGHTTPD_PID"
}

# nginx_start NAME PATH SNIPPET [HTTP-LINE...]: an nginx of our own on
# 127.0.0.1 and a free port, its files in $SERVERS_DIR named after NAME,
# each HTTP-LINE in its http block and SNIPPET in its one server block;
# checked, started and polled at PATH.  Relative includes (the
# recipe's fastcgi_params) are found in $SERVERS_DIR.  Its workers run as
# server_user.  NGINX_CONNECTIONS sets worker_connections (64).  Sets
# NGINX_PORT and NGINX_PID.
nginx_start() {
	local name=$1 path=$2 snippet=$3 d=$SERVERS_DIR user
	shift 3
	user=$(server_user)
	NGINX_PORT=$(free_port) || return 1
	mkdir -p "$d/run" "$d/tmp"
	[ -z "$user" ] || chown "$user" "$d/tmp" || return 1
	[ -f "$d/fastcgi_params" ] || cp /etc/nginx/fastcgi_params "$d/" ||
	    return 1
	cat > "$d/$name.conf" <<-CONF
	daemon off;
	master_process on;
	worker_processes 1;
	${user:+user $user $(id -gn "$user");}
	pid $d/run/$name.pid;
	error_log $d/$name-error.log warn;
	events { worker_connections ${NGINX_CONNECTIONS:-64}; }
	http {
		access_log off;
		client_body_temp_path $d/tmp/body;
		fastcgi_temp_path $d/tmp/fastcgi;
		proxy_temp_path $d/tmp/proxy;
		uwsgi_temp_path $d/tmp/uwsgi;
		scgi_temp_path $d/tmp/scgi;
		$([ "$#" -eq 0 ] || printf '%s\n' "$@")
		server {
			listen 127.0.0.1:$NGINX_PORT;
			server_name localhost;
			include $snippet;
		}
	}
	CONF
	nginx -t -p "$d" -c "$d/$name.conf" -e "$d/$name-error.log" 2>&1 |
	    grep -q 'test is successful' || return 1
	start_bg "$name" nginx -p "$d" -c "$d/$name.conf" -e "$d/$name-error.log"
	NGINX_PID=$LAST_PID
	wait_http "http://127.0.0.1:$NGINX_PORT$path" "$NGINX_PID"
}

# spawn_fcgi_command SOCK PROG ENVFILE: the ExecStart of
# contrib/nsps-connector-spawn-fcgi.service with paths (and users)
# changed, one word a line; the derived unit is $SERVERS_DIR/spawn.service.
spawn_fcgi_command() {
	local unit=$CONTRIB_DIR/nsps-connector-spawn-fcgi.service
	local cmd user
	user=$(server_user)
	derive_config "$unit" "$SERVERS_DIR/spawn.service" \
	    "/run/nsps-connector/fcgi.sock=$1" \
	    "/usr/local/sbin/nsps-connector=$2" \
	    "/etc/nsps/connector.env=$3" \
	    "/usr/bin/spawn-fcgi=$(command -v spawn-fcgi)" || return 1
	cmd=$(sed -n 's/^ExecStart=//p' "$SERVERS_DIR/spawn.service")
	if [ -n "$user" ]; then
		cmd=${cmd//-u nsps -g nsps/-u $user -g $(id -gn "$user")}
		cmd=${cmd//-U www-data -G www-data/-U $user -G $(id -gn "$user")}
	else
		# Not root: nobody to switch to, and the socket stays ours.
		cmd=${cmd//-u nsps -g nsps /}
		cmd=${cmd//-U www-data -G www-data /}
	fi
	printf '%s\n' $cmd
}

# spawn_fcgi_env: the unit's Environment= line, NAME=VALUE.
spawn_fcgi_env() {
	sed -n 's/^Environment=//p' "$SERVERS_DIR/spawn.service"
}

# suite_setup [-b] MAX_BODY_BYTES LAUNCH: a server suite's setup_file: a
# shared directory $D (exported) holding connector_files, the binary
# moved to $D/bin with -b (for recipes that name its directory), then
# LAUNCH, retried on another port when it fails.
suite_setup() {
	local bin=
	if [ "$1" = -b ]; then
		bin=1
		shift
	fi
	D=$(make_shared_dir) || return 1
	export D
	servers_init "$D"
	connector_files "$D" "$1" || return 1
	if [ -n "$bin" ]; then
		mkdir -m 755 "$D/bin" && mv "$D/nsps-connector" "$D/bin/" ||
		    return 1
	fi
	retry 3 "$2"
}

# suite_teardown: a server suite's teardown_file.
suite_teardown() {
	servers_stop_all
	[ -z "${D:-}" ] || rm -rf "$D"
}

# spawn_fcgi_start SOCK PROG ENVFILE GROUP [PROCS]: the connector as the
# recipes of HAProxy, Caddy and H2O run it: the spawn-fcgi unit's
# ExecStart (spawn_fcgi_command) with the socket's group GROUP (the
# front end's) and, when PROCS is over 1, multiwatch(1) keeping PROCS
# processes on the socket.  Their stderr is $SERVERS_DIR/spawn-fcgi.err.
# Waits for the socket; sets SPAWN_PID.
spawn_fcgi_start() {
	local sock=$1 prog=$2 env=$3 group=$4 procs=${5:-1} word prev=
	local -a unit cmd=()
	mapfile -t unit < <(spawn_fcgi_command "$sock" "$prog" "$env") ||
	    return 1
	[ "${#unit[@]}" -gt 3 ] || return 1
	for word in "${unit[@]}"; do
		if [ "$word" = "$prog" ] && [ "$procs" -gt 1 ]; then
			cmd+=("$(command -v multiwatch)" -f "$procs" --)
		fi
		# -G: the front end's group, so that it may use the socket.
		if [ "$prev" = -G ] && [ -n "$(server_user)" ]; then
			word=$group
		fi
		cmd+=("$word")
		prev=$word
	done
	rm -f "$sock"
	start_bg spawn-fcgi env -i PATH="$PATH" "$(spawn_fcgi_env)" "${cmd[@]}"
	SPAWN_PID=$LAST_PID
	wait_file "$sock" "$SPAWN_PID"
}

# front_group: the group a front end that drops privileges runs in when
# the suite runs as root (server_user's); empty otherwise.
front_group() {
	local user
	user=$(server_user)
	[ -z "$user" ] || id -gn "$user"
}

# load_check BASE [SECONDS]: wrk, 2 threads and 16 connections for
# SECONDS (default 3) posting the NSPS sample through the front end at
# BASE.  A check that the connector pool behind it does not stall, not
# a performance figure: every answer must be a 202, with no socket
# error, and the slowest request under 1 s (on a loaded CI machine a
# healthy pool's slowest is tens of milliseconds; a stalled one waits
# for a timeout of seconds).  Prints wrk's summary.
load_check() {
	local base=$1 secs=${2:-3} out=$SERVERS_DIR/wrk.out max ok
	LOAD_TOKEN=$TOKEN LOAD_BODY=$FIX/nsps-doc-sample.json \
	    wrk -t2 -c16 -d"$secs"s --timeout 5s \
	    -s "$TESTS_DIR/lib/load.lua" "$base/process-event" > "$out" 2>&1 ||
	    { cat "$out" >&2; return 1; }
	cat "$out"
	ok=$(awk '$1 == "status" && $2 == 202 { print $3 }' "$out")
	[ -n "$ok" ] && [ "$ok" -gt 0 ] || { echo "no 202 at all" >&2; return 1; }
	awk -v ok="$ok" '
	    $1 == "requests" && $2 != ok { print "requests " $2 ", 202s " ok; bad = 1 }
	    $1 == "status" && $2 != 202 { print "status " $2 ": " $3; bad = 1 }
	    $1 == "errors" && $2 + $3 + $4 + $5 + $6 > 0 { print; bad = 1 }
	    $1 == "latency_max_us" && $2 >= 1000000 { print; bad = 1 }
	    END { exit bad }' "$out" >&2
}

# body_sweep URL LOG FROM TO [FROM TO...]: one curl command line posting
# the NSPS sample padded with spaces (JSON's own whitespace) to every
# size from FROM to TO bytes, over one kept client connection.  Every
# request must be a 202 on that one connection and be logged.
body_sweep() {
	local url=$1 log=$2 n=0 size sample=$FIX/nsps-doc-sample.json
	local dir=$SERVERS_DIR/sweep out first=1
	local -a args=()
	shift 2
	mkdir -p "$dir"
	while [ "$#" -ge 2 ]; do
		for size in $(seq "$1" "$2"); do
			{
				tr -d '\n' < "$sample"
				head -c "$((size - $(tr -d '\n' < "$sample" | wc -c)))" \
				    /dev/zero | tr '\0' ' '
			} > "$dir/$size.json"
			[ "$(stat -c %s "$dir/$size.json")" -eq "$size" ] ||
			    return 1
			[ -n "$first" ] || args+=(--next)
			first=
			args+=(-s -o /dev/null -w '%{http_code} %{num_connects}\n'
			    -H 'Content-Type: application/json'
			    -H "Authorization: Bearer $TOKEN"
			    --data-binary "@$dir/$size.json" "$url")
			n=$((n + 1))
		done
		shift 2
	done
	log_mark "$log"
	out=$(curl -m 60 "${args[@]}") || :
	# n answers, all 202; one new connection, for the first request,
	# then that one reused.
	awk -v n="$n" '$1 == 202 { ok++ } { c += $2 }
	    END { exit !(NR == n && ok == n && c == 1) }' <<<"$out" ||
	    fail_with "$n sizes on one connection (status, new connections):" \
	    "$(sort <<<"$out" | uniq -c)" || return 1
	assert_logged "$log" "Received event: SIM/Updated | bill status: open" "$n"
}

# haproxy_start NAME RECIPE: HAProxy with a global and a defaults section
# of the suite's own (Debian's timeouts; the account server_user when
# root) and RECIPE, already derived, after them; checked, started in
# the foreground and polled at HAPROXY_POLL.
haproxy_start() {
	local name=$1 recipe=$2 d=$SERVERS_DIR user pid
	user=$(server_user)
	{
		echo 'global'
		[ -z "$user" ] || printf '\tuser %s\n\tgroup %s\n' "$user" "$(front_group)"
		printf '\t%s\n' 'maxconn 256' 'log stderr format raw local0 warning'
		echo 'defaults'
		printf '\t%s\n' 'mode http' 'log global' 'timeout connect 5s' \
		    'timeout client 50s' 'timeout server 50s'
		cat "$recipe"
	} > "$d/$name.cfg"
	haproxy -c -q -f "$d/$name.cfg" >&2 || return 1
	start_bg "$name" haproxy -db -f "$d/$name.cfg"
	pid=$LAST_PID
	wait_http "$HAPROXY_POLL" "$pid"
}

# caddy_start NAME CADDYFILE HTTP-PORT HTTPS-PORT URL: Caddy with a
# global options block of the suite's own before CADDYFILE (already
# derived): no admin endpoint, the given ports, bound to 127.0.0.1
# only, its data and configuration under $SERVERS_DIR/NAME, as
# server_user when root; checked, started and polled at URL.
caddy_start() {
	local name=$1 file=$2 http=$3 https=$4 url=$5 d=$SERVERS_DIR user
	local home=$SERVERS_DIR/$1
	local -a as=()
	user=$(server_user)
	mkdir -p "$home"
	if [ -n "$user" ]; then
		chown "$user" "$home" || return 1
		as=(setpriv --reuid="$user" --regid="$(front_group)" --init-groups)
	fi
	{
		printf '{\n\tadmin off\n'
		printf '\thttp_port %s\n\thttps_port %s\n' "$http" "$https"
		printf '\tdefault_bind 127.0.0.1\n\tskip_install_trust\n'
		printf '\tstorage file_system %s\n}\n' "$home/data"
		cat "$file"
	} > "$d/$name.Caddyfile"
	"${as[@]}" env -i PATH="$PATH" HOME="$home" XDG_DATA_HOME="$home" \
	    XDG_CONFIG_HOME="$home" caddy validate --adapter caddyfile \
	    --config "$d/$name.Caddyfile" > "$d/$name.validate" 2>&1 ||
	    { cat "$d/$name.validate" >&2; return 1; }
	start_bg "$name" "${as[@]}" env -i PATH="$PATH" HOME="$home" \
	    XDG_DATA_HOME="$home" XDG_CONFIG_HOME="$home" \
	    caddy run --adapter caddyfile --config "$d/$name.Caddyfile"
	wait_http "$url" "$LAST_PID"
}

# h2o_start NAME CONF URL: H2O on CONF (already derived), checked,
# started in the foreground and polled at URL.
h2o_start() {
	local name=$1 conf=$2 url=$3
	h2o -m test -c "$conf" > "$SERVERS_DIR/$name.test" 2>&1 ||
	    { cat "$SERVERS_DIR/$name.test" >&2; return 1; }
	start_bg "$name" h2o -c "$conf"
	wait_http "$url" "$LAST_PID"
}

# nginx_site_start NAME URL SITE: an nginx of our own whose http block
# includes SITE (server blocks of a recipe, already derived with
# 127.0.0.1 and free ports), as nginx_start otherwise; checked, started
# and polled at URL.  Sets NGINX_PID.
nginx_site_start() {
	local name=$1 url=$2 site=$3 d=$SERVERS_DIR user
	user=$(server_user)
	mkdir -p "$d/run" "$d/tmp"
	[ -z "$user" ] || chown "$user" "$d/tmp" || return 1
	[ -f "$d/fastcgi_params" ] || cp /etc/nginx/fastcgi_params "$d/" ||
	    return 1
	cat > "$d/$name.conf" <<-CONF
	daemon off;
	master_process on;
	worker_processes 1;
	${user:+user $user $(id -gn "$user");}
	pid $d/run/$name.pid;
	error_log $d/$name-error.log warn;
	events { worker_connections ${NGINX_CONNECTIONS:-64}; }
	http {
		access_log off;
		client_body_temp_path $d/tmp/body;
		fastcgi_temp_path $d/tmp/fastcgi;
		proxy_temp_path $d/tmp/proxy;
		uwsgi_temp_path $d/tmp/uwsgi;
		scgi_temp_path $d/tmp/scgi;
		include $site;
	}
	CONF
	nginx -t -p "$d" -c "$d/$name.conf" -e "$d/$name-error.log" 2>&1 |
	    grep -q 'test is successful' || return 1
	start_bg "$name" nginx -p "$d" -c "$d/$name.conf" -e "$d/$name-error.log"
	NGINX_PID=$LAST_PID
	wait_http "$url" "$NGINX_PID"
}
