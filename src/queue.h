/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * queue.c: what the stores and the scheduler share.  Needs extern.h
 * first.
 */
#ifndef NSPS_QUEUE_H
#define NSPS_QUEUE_H

extern const char *const queue_state_names[QSTATE_COUNT];

long long clock_ms(clockid_t);
void	 delivery_free(struct delivery *);

#endif /* NSPS_QUEUE_H */
