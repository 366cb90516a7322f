/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-connector: options and mode selection.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

#ifdef HAVE_MIMALLOC
#include <mimalloc.h>
#endif

/* The version, and the allocator the build linked: it shows in figures. */
static void
print_version(void)
{
#ifdef HAVE_MIMALLOC
	int	 v = mi_version();

	printf("%s %s (mimalloc %d.%d.%d)\n", PROG, PACKAGE_VERSION,
	    v / 100, v / 10 % 10, v % 10);
#else
	printf("%s %s\n", PROG, PACKAGE_VERSION);
#endif
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-hV] [-d spooldir] [-e envfile] [-f file] "
	    "[-H healthpath]\n"
	    "                      [-l format] [-m maxbytes] [-p eventpath] "
	    "[-r fields]\n"
	    "                      [-s addr] [-t tokenfile]\n", PROG);
}

/* Makes sure fds 0-2 are open, so that no file we open becomes one. */
static void
sanitise_stdio(void)
{
	int	 fd;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
		    open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			_exit(1);
}

static int
is_listening_socket(int fd)
{
	struct stat	 st;
	int		 val = 0;
	socklen_t	 len = sizeof(val);

	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 &&
	    val != 0;
}

/*
 * The socket systemd hands over: fd 0 with StandardInput=socket, or fd 3
 * with LISTEN_FDS=1 meant for this process.
 */
static int
inherited_socket(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	size_t		 v;

	if (is_listening_socket(STDIN_FILENO))
		return STDIN_FILENO;
	if (pid != NULL && fds != NULL && strcmp(fds, "1") == 0 &&
	    parse_size(pid, (size_t)1 << 30, &v) == 0 &&
	    (pid_t)v == getpid() && is_listening_socket(3))
		return 3;
	return -1;
}

/*
 * FastCGI refuses to start on bad configuration, an unusable store
 * included: nobody would see a 500.  A store that is only away (a
 * database down) comes last: configuration is the one to fix first.
 */
static int
run_fcgi(const struct config *cfg, const struct sink *sink, const char *addr,
    int fd)
{
	const char	*why = NULL;
	int		 ex = EX_CONFIG_CODE, threads = 1;

	if (cfg->error[0] != '\0') {
		log_msg("%s", cfg->error);
		return EX_CONFIG_CODE;
	}
	if (sink->error != NULL)
		why = sink->error(sink->ctx, &ex);
	if (why != NULL && ex == EX_CONFIG_CODE) {
		log_msg("%s", why);
		return ex;
	}
	if (sink->metrics != NULL && sink->metrics->f == NULL) {
		log_msg("%s", sink->metrics->error);
		return EX_CONFIG_CODE;
	}
	if (why != NULL) {
		log_msg("%s", why);
		return ex;
	}
	if (sink->serving != NULL)
		threads = sink->serving(sink->ctx);
	/* Inline delivery runs one handler at a time per process. */
	if (sink->deliver != NULL)
		threads = 1;
	return serve_fcgi(cfg, sink, addr, fd, threads);
}

int
main(int argc, char *argv[])
{
	struct options	 opts;
	struct config	 cfg;
	struct sink	 sink = { 0 };
	struct metrics	 metrics;
	const struct store *store = NULL;
	const char	*addr = NULL, *file = NULL;
	char		 err[MAX_PATH_LEN + 256];
	int		 ch, fd, rc, ex;

	sanitise_stdio();
	use_c_locale();
	memset(&opts, 0, sizeof(opts));
	opts.program = FOR_CONNECTOR;
	while ((ch = getopt(argc, argv, "d:e:f:H:hl:m:p:r:s:t:V")) != -1) {
		switch (ch) {
		case 'd':
			opts.value[S_SPOOL_DIR] = optarg;
			break;
		case 'e':
			opts.env_file = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'H':
			opts.value[S_HEALTH_PATH] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			opts.value[S_LOG_FORMAT] = optarg;
			break;
		case 'm':
			opts.value[S_MAX_BODY_BYTES] = optarg;
			break;
		case 'p':
			opts.value[S_EVENT_PATH] = optarg;
			break;
		case 'r':
			opts.value[S_REQUIRED_FIELDS] = optarg;
			break;
		case 's':
			addr = optarg;
			break;
		case 't':
			opts.value[S_API_TOKEN_FILE] = optarg;
			break;
		case 'V':
			print_version();
			return 0;
		default:
			usage(stderr);
			return EX_USAGE_CODE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE_CODE;
	}
	if (addr != NULL && file != NULL) {
		fprintf(stderr, "%s: -f and -s exclude each other\n", PROG);
		return EX_USAGE_CODE;
	}
	signal(SIGPIPE, SIG_IGN);

	(void)config_load(&cfg, &opts);
	log_init(&cfg);
	/*
	 * The store, chosen once.  Without libpq no mode could store
	 * anything: every mode stops, as FastCGI does on a bad setting.
	 */
	if (cfg.error[0] == '\0')
		store = store_choose(&cfg);
	if (store != NULL && store->load != NULL &&
	    store->load(&cfg, err, sizeof(err)) == -1) {
		log_msg("%s", err);
		config_free(&cfg);
		return EX_CONFIG_CODE;
	}
	if (store != NULL &&
	    store->sink_open(&sink, &cfg, err, sizeof(err), &ex) == -1) {
		log_msg("%s", err);
		config_free(&cfg);
		return ex;
	}
	/*
	 * The shared counters, mapped once (per invocation in CGI).  In
	 * the one-request modes a file that cannot be used costs only
	 * the metrics: the event is still handled, scrapes answer 503.
	 */
	memset(&metrics, 0, sizeof(metrics));
	if (cfg.error[0] == '\0' && cfg.metrics_dir != NULL) {
		sink.metrics = &metrics;
		(void)metrics_open(&metrics, cfg.metrics_dir,
		    cfg.metrics_max_types);
	}
	if (store != NULL && cfg.inline_delivery &&
	    inline_open(&sink, &cfg, store, err, sizeof(err), &ex) == -1) {
		log_msg("%s", err);
		if (sink.close != NULL)
			sink.close(sink.ctx);
		metrics_close(&metrics);
		config_free(&cfg);
		return ex;
	}

	if (addr != NULL)
		rc = run_fcgi(&cfg, &sink, addr, -1);
	else if (file == NULL && (fd = inherited_socket()) != -1)
		rc = run_fcgi(&cfg, &sink, NULL, fd);
	else {
		/* One request: a bad configuration is answered with 500. */
		if (cfg.error[0] != '\0')
			log_msg("%s", cfg.error);
		if (sink.metrics != NULL && metrics.f == NULL)
			log_msg("%s", metrics.error);
		if (file == NULL && getenv("REQUEST_METHOD") != NULL)
			rc = serve_cgi(&cfg, &sink);
		else if (file == NULL)
			rc = serve_file(&cfg, &sink, STDIN_FILENO);
		else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
			log_msg("%s: %s", file, strerror(errno));
			rc = 1;
		} else {
			rc = serve_file(&cfg, &sink, fd);
			close(fd);
		}
	}
	inline_close(&sink);
	if (sink.close != NULL)
		sink.close(sink.ctx);
	metrics_close(&metrics);
	config_free(&cfg);
	log_free();
	return rc;
}
