-- Copyright (c) 2026 The nsps-connector authors
-- SPDX-License-Identifier: ISC (see LICENSE)
-- Two least-privilege roles for the PostgreSQL store, after
-- "nsps-deliver --migrate" made the tables (run it as their owner):
--
--   nsps_connector  inserts events; reads only what GET /health counts
--   nsps_worker     claims, finishes, requeues and prunes events
--
-- Neither may change the schema.  Give each a password afterwards
-- (psql: \password nsps_connector) and put it in PGPASSFILE or the
-- env file's DATABASE_URL, never on a command line.
-- Run again at will: it changes nothing the second time.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nsps_connector')
	THEN
		CREATE ROLE nsps_connector LOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nsps_worker')
	THEN
		CREATE ROLE nsps_worker LOGIN;
	END IF;
END $$;

REVOKE ALL ON nsps_event, nsps_applied, nsps_schema
    FROM nsps_connector, nsps_worker;
REVOKE CREATE ON SCHEMA public FROM nsps_connector, nsps_worker;
GRANT USAGE ON SCHEMA public TO nsps_connector, nsps_worker;

-- The connector: INSERT ... ON CONFLICT DO NOTHING, and the backlog.
GRANT INSERT ON nsps_event TO nsps_connector;
GRANT SELECT (event_id, state) ON nsps_event TO nsps_connector;

-- The worker: everything on the rows, nothing on the tables.
GRANT SELECT, UPDATE, DELETE ON nsps_event TO nsps_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON nsps_applied TO nsps_worker;
GRANT SELECT ON nsps_schema TO nsps_worker;
