# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# HTTPS for the server suites: a throwaway certificate authority and a
# certificate for 127.0.0.1 and localhost, made with openssl(1) in the
# suite's own directory, laid out as Let's Encrypt lays out
# /etc/letsencrypt/live/EXAMPLE/ (fullchain.pem, privkey.pem), so that
# a recipe's certificate paths are replaced and nothing else.
#
# tls_make also exports CURL_CA_BUNDLE, which is curl's --cacert read
# from the environment: every curl of the suite (the shared contract,
# wait_http) then trusts that authority and no other.

# tls_make DIR: DIR/ca.pem (the authority), DIR/fullchain.pem and
# DIR/privkey.pem (the server's), and DIR/combined.pem, the two in one
# file as HAProxy reads them.  Valid for two days; keys are P-256.
tls_make() {
	local dir=$1
	mkdir -p "$dir" || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -days 2 -subj '/CN=nsps-connector test CA' \
	    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$dir/openssl.err" ||
	    { cat "$dir/openssl.err" >&2; return 1; }
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj '/CN=127.0.0.1' -keyout "$dir/privkey.pem" \
	    -out "$dir/cert.csr" 2>"$dir/openssl.err" ||
	    { cat "$dir/openssl.err" >&2; return 1; }
	printf '%s\n' 'subjectAltName = IP:127.0.0.1, DNS:localhost' \
	    'basicConstraints = critical, CA:FALSE' \
	    'keyUsage = critical, digitalSignature' \
	    'extendedKeyUsage = serverAuth' > "$dir/cert.ext"
	openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" \
	    -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
	    -extfile "$dir/cert.ext" -out "$dir/fullchain.pem" \
	    2>"$dir/openssl.err" || { cat "$dir/openssl.err" >&2; return 1; }
	cat "$dir/fullchain.pem" "$dir/privkey.pem" > "$dir/combined.pem"
	chmod 600 "$dir/privkey.pem" "$dir/combined.pem" "$dir/ca.key"
	CURL_CA_BUNDLE=$dir/ca.pem
	export CURL_CA_BUNDLE
}

# tls_check_https BASE: BASE (https://) answers the health check with a
# certificate of the suite's authority (explicitly with --cacert, and
# not without it: the system's authorities do not know it), over TLS
# 1.2 or later, with a Strict-Transport-Security of at least a year on
# the health check and on an accepted event.
tls_check_https() {
	local base=$1 hsts
	[[ $base == https://* ]] || fail_with "not HTTPS: $base" || return 1
	run curl -sS -o /dev/null -m 10 "$base/health" --cacert /dev/null
	[ "$status" -ne 0 ] ||
	    fail_with "a certificate no one signed was accepted" || return 1
	run -0 env -u CURL_CA_BUNDLE curl -sS -o /dev/null -m 10 \
	    -w '%{http_code} %{ssl_verify_result}' --tlsv1.2 \
	    --cacert "$CURL_CA_BUNDLE" "$base/health"
	[ "$output" = "200 0" ] || fail_with "with --cacert: $output" ||
	    return 1
	http GET "$base/health"
	assert_status 200 || return 1
	tls_assert_hsts || return 1
	post "$base/process-event" "$FIX/nsps-doc-sample.json"
	assert_status 202 || return 1
	tls_assert_hsts
}

# tls_assert_hsts: the last answer (http) has Strict-Transport-Security
# with a max-age of a year or more.
tls_assert_hsts() {
	local age
	age=$(sed -n 's/^[Ss]trict-[Tt]ransport-[Ss]ecurity: *max-age=\([0-9]*\).*/\1/p' \
	    <<<"$resp_headers" | head -n 1)
	[ -n "$age" ] || fail_with "no Strict-Transport-Security" || return 1
	[ "$age" -ge 31536000 ] ||
	    fail_with "Strict-Transport-Security max-age $age < a year"
}

# tls_check_plain URL LOG [CURL-ARGS...]: the Service URL over plain HTTP
# (URL, the http:// form of BASE/process-event) never reaches the
# connector: the server redirects it to https:// (301, 302, 307 or 308
# with Location) or refuses it itself; nothing is logged.
tls_check_plain() {
	local url=$1 log=$2 loc
	shift 2
	[[ $url == http://* ]] || fail_with "not plain HTTP: $url" || return 1
	log_mark "$log"
	post "$url" "$FIX/nsps-doc-sample.json" "$@"
	case $resp_status in
	301|302|307|308)
		loc=$(sed -n 's/^[Ll]ocation: *//p' <<<"$resp_headers")
		[[ $loc == https://* ]] ||
		    fail_with "redirected elsewhere than https: $loc" ||
		    return 1
		;;
	4*)	assert_from server || return 1 ;;
	*)	fail_with "plain HTTP answered $resp_status" || return 1 ;;
	esac
	sleep 0.2
	! log_new "$log" | grep -qF "Received event" ||
	    fail_with "an event over plain HTTP reached the connector"
}

# tls_check_other_host URL LOG: as tls_check_plain, the Service URL over
# plain HTTP, but with a Host name that is not the recipe's: a server
# that picks another site for it (Debian's 000-default in Apache, a
# catch-all server) must not serve the event there either.
tls_check_other_host() {
	tls_check_plain "$1" "$2" -H 'Host: other.invalid'
}

# lighttpd_tls DIR PORT: contrib/lighttpd-tls.conf derived into
# DIR/tls.conf, listening on 127.0.0.1:PORT with the certificate tls_make
# made in DIR/tls.  Prints the lighttpd line that includes it.
lighttpd_tls() {
	local dir=$1 port=$2
	derive_config "$CONTRIB_DIR/lighttpd-tls.conf" "$dir/tls.conf" \
	    "\":443\"=\"127.0.0.1:$port\"" \
	    "/etc/letsencrypt/live/EXAMPLE=$dir/tls" >&2 || return 1
	echo "include \"$dir/tls.conf\""
}
