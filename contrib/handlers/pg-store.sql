-- Copyright (c) 2026 The nsps-connector authors
-- SPDX-License-Identifier: ISC (see LICENSE)
-- The table contrib/handlers/pg-store writes to: one row per event_id,
-- shared by every connector host.
CREATE TABLE IF NOT EXISTS nsps_events (
	event_id	text PRIMARY KEY,
	event_type	text NOT NULL,
	bill_status	text NOT NULL,
	event_time	timestamptz,	-- data.variables.event_time (UTC)
	body		jsonb NOT NULL,
	attempt		integer NOT NULL,
	stored_at	timestamptz NOT NULL DEFAULT now(),
	stored_by	text NOT NULL		-- the connector host
);
CREATE INDEX IF NOT EXISTS nsps_events_type_time
	ON nsps_events (event_type, event_time);
