/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * libpq_load.c: the libpq functions pg.c calls, reached through
 * pointers that pq_load() fills (see libpq_load.c for why).  The types come from libpq's own
 * prototypes, so the compiler checks every call as it would a direct
 * one.
 */
#ifndef NSPS_LIBPQ_LOAD_H
#define NSPS_LIBPQ_LOAD_H

#include <libpq-fe.h>

struct pq {
	__typeof__(PQclear)			*clear;
	__typeof__(PQcmdTuples)			*cmdTuples;
	__typeof__(PQconnectdbParams)		*connectdbParams;
	__typeof__(PQconnectionNeedsPassword)	*connectionNeedsPassword;
	__typeof__(PQconninfoFree)		*conninfoFree;
	__typeof__(PQconninfoParse)		*conninfoParse;
	__typeof__(PQconsumeInput)		*consumeInput;
	__typeof__(PQerrorMessage)		*errorMessage;
	__typeof__(PQfinish)			*finish;
	__typeof__(PQfreemem)			*freemem;
	__typeof__(PQgetResult)			*getResult;
	__typeof__(PQgetisnull)			*getisnull;
	__typeof__(PQgetvalue)			*getvalue;
	__typeof__(PQisBusy)			*isBusy;
	__typeof__(PQnotifies)			*notifies;
	__typeof__(PQntuples)			*ntuples;
	__typeof__(PQresultErrorField)		*resultErrorField;
	__typeof__(PQresultErrorMessage)	*resultErrorMessage;
	__typeof__(PQresultStatus)		*resultStatus;
	__typeof__(PQsendPrepare)		*sendPrepare;
	__typeof__(PQsendQuery)			*sendQuery;
	__typeof__(PQsendQueryParams)		*sendQueryParams;
	__typeof__(PQsendQueryPrepared)		*sendQueryPrepared;
	__typeof__(PQsocket)			*socket;
	__typeof__(PQstatus)			*status;
	__typeof__(PQunescapeBytea)		*unescapeBytea;
};

/*
 * Filled by pq_load(), which the store's load() calls before anything
 * else; it also checks that libpq parses the URL.
 */
extern struct pq pq;

int	 pq_load(const char *, char *, size_t);

#endif /* NSPS_LIBPQ_LOAD_H */
