-- Copyright (c) 2026 The nsps-connector authors
-- SPDX-License-Identifier: ISC (see LICENSE)
-- The PostgreSQL store of nsps-connector and nsps-deliver, schema
-- version 1: what "nsps-deliver --migrate" creates, for review or for
-- a DBA who applies it by hand (psql -1 -f nsps-pg-schema.sql).
CREATE TABLE nsps_event (
	event_id	text PRIMARY KEY,
	body		bytea NOT NULL,
	received	timestamptz NOT NULL DEFAULT now(),
	event_type	text,
	bill_status	text,
	trace_id	text,
	request_id	text,
	okey		text,
	version_ns	bigint,
	created_ns	bigint,
	state		text NOT NULL DEFAULT 'new' CHECK (state IN
			    ('new', 'cur', 'retry', 'done', 'failed')),
	attempts	integer NOT NULL DEFAULT 0,
	first_at	timestamptz,
	due_at		timestamptz,
	done_at		timestamptz,
	lock_key	text,
	owner		text,
	lease_until	timestamptz,
	result		text,
	newer		text,
	stderr		bytea
);
CREATE INDEX nsps_event_waiting ON nsps_event (received, event_id)
    WHERE state IN ('new', 'retry');
CREATE INDEX nsps_event_key ON nsps_event (okey)
    WHERE state IN ('new', 'retry');
CREATE INDEX nsps_event_leased ON nsps_event (owner)
    WHERE state = 'cur';
CREATE INDEX nsps_event_done ON nsps_event (done_at)
    WHERE state = 'done';
-- One running event per key, whichever worker runs it.
CREATE UNIQUE INDEX nsps_event_running_key ON nsps_event (lock_key)
    WHERE state = 'cur';
CREATE TABLE nsps_applied (
	okey		text PRIMARY KEY,
	version_ns	bigint NOT NULL,
	created_ns	bigint NOT NULL,
	event_id	text NOT NULL,
	at		timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE nsps_schema (version integer NOT NULL);
INSERT INTO nsps_schema VALUES (1);
