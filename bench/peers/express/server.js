// Copyright (c) 2026 The nsps-connector authors
// SPDX-License-Identifier: ISC (see LICENSE)
// A peer for bench/durable and bench/run: the NSPS guide's Express
// connector ("Get Started", simple-connector-express), in plain
// JavaScript, with a durable store added where the guide says "save it
// to a database".
//
// It checks the bearer token as the guide does, parses the event
// (express.json()), answers 422 without event_type, bill_status or
// event_id, and, when PEER_STORE is "pg", inserts the event's id and
// raw body into "events" through a node-postgres Pool and waits for the
// commit (synchronous_commit on) before it logs "Received event:
// <event_type> | bill status: <status>" and answers 202.  With
// PEER_STORE=none it logs and answers at once, as the guide's example
// does.
//
// Environment: API_TOKEN, PORT, HOST (127.0.0.1); PEER_STORE (pg or
// none); for pg, PGHOST (the socket's directory), PGPORT, PGUSER,
// PGDATABASE, which node-postgres reads itself, and PEER_POOL (the
// pool's size).
'use strict';

const express = require('express');
const { Pool } = require('pg');

const API_TOKEN = process.env.API_TOKEN;
const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';
const STORE = process.env.PEER_STORE || 'pg';
const INSERT = 'INSERT INTO events (event_id, body) VALUES ($1, $2) ' +
    'ON CONFLICT (event_id) DO NOTHING';

if (!API_TOKEN) {
	console.error('server.js: API_TOKEN is not set');
	process.exit(78);
}

const pool = STORE === 'pg' ?
    new Pool({ max: Number(process.env.PEER_POOL || 2) }) : null;

const app = express();
// The raw body is kept for the store, as the connector stores it.
app.use(express.json({
	limit: '2mb',
	verify: (req, res, buf) => { req.rawBody = buf; },
}));

function verifyBearerToken(req, res, next) {
	const auth = req.headers['authorization'] || '';
	const token = auth.replace('Bearer ', '');
	if (!auth.toString().startsWith('Bearer ') || token !== API_TOKEN) {
		return res.status(401).json({
			message: 'Authentication failed',
			error: 'Invalid API token',
			type: 'AUTHENTICATION_ERROR',
		});
	}
	next();
}

app.get('/health', (req, res) => res.json({}));

app.post('/process-event', verifyBearerToken, async (req, res) => {
	const { event_id: eventId, data, pb_data: pbData } = req.body || {};

	const eventType = data?.event_type;
	const billStatus = pbData?.account_info?.bill_status;

	if (!eventType || !billStatus || typeof eventId !== 'string') {
		return res.status(422).json({
			message: 'Validation failed',
			error: 'Validation failed',
			type: 'VALIDATION_ERROR',
		});
	}

	if (pool !== null) {
		try {
			await pool.query(INSERT, [eventId, req.rawBody.toString()]);
		} catch (err) {
			console.error('server.js: insert:', err.message);
			return res.status(503).json({
				message: 'Core service is not available',
				error: 'Store failed',
				type: 'SERVICE_ERROR',
			});
		}
	}

	console.log('Received event:', eventType, '| bill status:', billStatus);

	res.status(202).json({ message: 'Event accepted for processing' });
});

const server = app.listen(PORT, HOST, () => {
	console.error(`Connector listening on ${HOST}:${PORT}`);
});

function stop() {
	server.close(() => {
		if (pool !== null)
			pool.end().then(() => process.exit(0));
		else
			process.exit(0);
	});
	// Kept connections hold close() up; do not wait for them.
	server.closeAllConnections?.();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
