/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * libpq, loaded with dlopen() only when DATABASE_URL chooses the
 * PostgreSQL store.  Linked in, it and the 26 libraries it needs
 * (OpenSSL, Kerberos, LDAP, GnuTLS...) were mapped and relocated by
 * every run, which made a one-shot CGI invocation cost 15 times the
 * instructions and 4 times the memory of one without them.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>

#include "extern.h"
#include "libpq_load.h"

#define PQ_SONAME	"libpq.so.5"

struct pq	 pq;

/* dlsym(), once nothing is missing yet: dlerror() names the first. */
static void *
sym(void *h, const char *name, int *missing)
{
	void	*p;

	if (*missing)
		return NULL;
	if ((p = dlsym(h, name)) == NULL)
		*missing = 1;
	return p;
}

static int
resolve(void *h, struct pq *t)
{
	int	 missing = 0;

	t->clear = sym(h, "PQclear", &missing);
	t->cmdTuples = sym(h, "PQcmdTuples", &missing);
	t->connectdbParams = sym(h, "PQconnectdbParams", &missing);
	t->connectionNeedsPassword = sym(h, "PQconnectionNeedsPassword",
	    &missing);
	t->conninfoFree = sym(h, "PQconninfoFree", &missing);
	t->conninfoParse = sym(h, "PQconninfoParse", &missing);
	t->consumeInput = sym(h, "PQconsumeInput", &missing);
	t->errorMessage = sym(h, "PQerrorMessage", &missing);
	t->finish = sym(h, "PQfinish", &missing);
	t->freemem = sym(h, "PQfreemem", &missing);
	t->getResult = sym(h, "PQgetResult", &missing);
	t->getisnull = sym(h, "PQgetisnull", &missing);
	t->getvalue = sym(h, "PQgetvalue", &missing);
	t->isBusy = sym(h, "PQisBusy", &missing);
	t->notifies = sym(h, "PQnotifies", &missing);
	t->ntuples = sym(h, "PQntuples", &missing);
	t->resultErrorField = sym(h, "PQresultErrorField", &missing);
	t->resultErrorMessage = sym(h, "PQresultErrorMessage", &missing);
	t->resultStatus = sym(h, "PQresultStatus", &missing);
	t->sendPrepare = sym(h, "PQsendPrepare", &missing);
	t->sendQuery = sym(h, "PQsendQuery", &missing);
	t->sendQueryParams = sym(h, "PQsendQueryParams", &missing);
	t->sendQueryPrepared = sym(h, "PQsendQueryPrepared", &missing);
	t->socket = sym(h, "PQsocket", &missing);
	t->status = sym(h, "PQstatus", &missing);
	t->unescapeBytea = sym(h, "PQunescapeBytea", &missing);
	return missing ? -1 : 0;
}

/*
 * Whether libpq can parse the URL: a malformed one is a configuration
 * error (78), where a connection that fails later is taken as the
 * database being away (75).  libpq's own message is not repeated: it
 * may quote the password.
 */
static int
url_parses(const char *url)
{
	PQconninfoOption	*opts;

	if ((opts = pq.conninfoParse(url, NULL)) == NULL)
		return 0;
	pq.conninfoFree(opts);
	return 1;
}

/*
 * Loads libpq and fills pq, once, at start-up, and checks that it can
 * parse url; 0, or -1 with why in err.  The table stays empty unless
 * every function was found.
 */
int
pq_load(const char *url, char *err, size_t errlen)
{
	static int	 loaded;
	struct pq	 t;
	const char	*why;
	void		*h;

	if (loaded)
		goto check;
	if ((h = dlopen(PQ_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    resolve(h, &t) == -1) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s", PQ_SONAME,
		    why != NULL ? why : "unknown error");
		if (h != NULL)
			dlclose(h);
		return -1;
	}
	pq = t;
	loaded = 1;
check:
	if (!url_parses(url)) {
		snprintf(err, errlen, "not a connection string or URI that "
		    "libpq accepts");
		return -1;
	}
	return 0;
}
