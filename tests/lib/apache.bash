# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# A minimal Apache httpd 2.4 of the suite's own, in $D, on 127.0.0.1 and
# a free port, with the recipe (already derived into $D/nsps.conf)
# included.  Shared by the mod_fcgid and mod_cgid suites.

APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}

apache_binary() {
	local b
	for b in apache2 /usr/sbin/apache2 httpd; do
		command -v "$b" && return 0
	done
	return 0
}

# apache_launch EXTRA-MODULE...: (APACHE_MPM picks the MPM, event by
# default) writes $D/apache.conf, checks it, starts
# the server in the foreground and waits for the health check.  Sets
# BASE and APACHE_PID.
apache_launch() {
	local port user m mods=""
	port=$(free_port) || return 1
	user=$(server_user)
	# mod_ssl before the recipe: its SSLRequireSSL is mod_ssl's.
	for m in "mpm_${APACHE_MPM:-event}" authz_core authz_host alias \
	    ${APACHE_TLS:+ssl} "$@"; do
		mods="${mods}LoadModule ${m}_module $APACHE_MODULES/mod_$m.so"$'\n'
	done
	cat > "$D/apache.conf" <<-CONF
	ServerRoot "$D"
	ServerName 127.0.0.1
	Listen 127.0.0.1:$port
	PidFile "$D/run/apache.pid"
	DefaultRuntimeDir "$D/run"
	Mutex file:$D/run default
	$mods
	${user:+User $user}
	${user:+Group $(id -gn "$user" 2>/dev/null)}
	ErrorLog "$D/error.log"
	LogLevel warn
	DocumentRoot "$D/htdocs"
	StartServers 1
	ServerLimit ${APACHE_SERVERS:-1}
	${APACHE_THREADS-ThreadsPerChild 8}
	MaxRequestWorkers ${APACHE_SERVERS:-8}
	$APACHE_EXTRA
	Include "$D/nsps.conf"
	CONF
	BASE=http://127.0.0.1:$port/nsps
	if [ -n "${APACHE_TLS:-}" ]; then
		apache_tls "$port" || return 1
	fi
	"$(apache_binary)" -t -f "$D/apache.conf" >&2 || return 1
	start_bg apache "$(apache_binary)" -DFOREGROUND -f "$D/apache.conf"
	APACHE_PID=$LAST_PID
	wait_http "$BASE/health" "$APACHE_PID"
}

# apache_tls PLAIN-PORT: (APACHE_TLS=1) contrib/apache-tls.conf derived
# into $D/tls.conf with both hosts on 127.0.0.1 (port 80 is PLAIN-PORT,
# 443 a free one) and the certificate tls_make made in $D/tls, appended
# to $D/apache.conf with what it needs.  Sets BASE (https) and PLAIN.
apache_tls() {
	local plain=$1 port
	port=$(free_port) || return 1
	derive_config "$CONTRIB_DIR/apache-tls.conf" "$D/tls.conf" \
	    "*:443=127.0.0.1:$port" "*:80=127.0.0.1:$plain" \
	    "/etc/letsencrypt/live/EXAMPLE=$D/tls" \
	    "https://EXAMPLE/nsps=https://127.0.0.1:$port/nsps" \
	    "ServerName EXAMPLE=ServerName 127.0.0.1" || return 1
	{
		echo "LoadModule headers_module $APACHE_MODULES/mod_headers.so"
		echo "LoadModule socache_shmcb_module $APACHE_MODULES/mod_socache_shmcb.so"
		echo "Listen 127.0.0.1:$port"
		# Debian's 000-default: the first site on port 80, so the
		# one a Host name no other site names reaches.
		echo "<VirtualHost 127.0.0.1:$plain>"
		echo "	ServerName default.invalid"
		echo "</VirtualHost>"
		echo "Include \"$D/tls.conf\""
	} >> "$D/apache.conf"
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$plain/nsps
}
