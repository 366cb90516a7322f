# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
"""A peer for bench/durable and bench/run: the NSPS guide's FastAPI
connector ("Get Started", simple-connector-fastapi), with a durable
store added where the guide says "save it to a database".

It checks the bearer token (HTTPBearer, as the guide does), parses the
event, answers 422 without event_type, bill_status or event_id, and, when
PEER_STORE is "pg", inserts the event's id and raw body into "events" through
an asyncpg pool and waits for the commit (synchronous_commit on) before
it logs "Received event: <event_type> | bill status: <status>" and
answers 202.  With PEER_STORE=none it logs and answers at once, as the
guide's example does.

Environment: API_TOKEN; PEER_STORE (pg or none); for pg, PGHOST (the
socket's directory), PGPORT, PGUSER, PGDATABASE and PEER_POOL (the
pool's size, min and max alike).  Run with uvicorn, e.g.
uvicorn app:app --loop uvloop --http httptools --no-access-log.
"""
import os
import sys

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# One write(2) per log line, as the connector's, so that the benchmark
# can count them in the file while the server runs.
sys.stdout.reconfigure(line_buffering=True)

API_TOKEN = os.environ["API_TOKEN"]
STORE = os.environ.get("PEER_STORE", "pg")
INSERT = ("INSERT INTO events (event_id, body) VALUES ($1, $2) "
          "ON CONFLICT (event_id) DO NOTHING")

app = FastAPI()
bearer_scheme = HTTPBearer()
pool = None


@app.on_event("startup")
async def startup():
    global pool
    if STORE == "pg":
        size = int(os.environ.get("PEER_POOL", "2"))
        pool = await asyncpg.create_pool(
            host=os.environ["PGHOST"], port=int(os.environ.get("PGPORT", 5432)),
            user=os.environ.get("PGUSER", "postgres"),
            database=os.environ.get("PGDATABASE", "postgres"),
            min_size=size, max_size=size)


@app.on_event("shutdown")
async def shutdown():
    if pool is not None:
        await pool.close()


def verify_bearer_token(
    credentials: HTTPAuthorizationCredentials = Depends(bearer_scheme),
):
    if credentials.credentials != API_TOKEN:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={
                "message": "Authentication failed",
                "error": "Invalid API token",
                "type": "AUTHENTICATION_ERROR",
            },
        )


@app.get("/health")
async def health():
    return {}


@app.post("/process-event")
async def process_event(
    request: Request,
    credentials: HTTPAuthorizationCredentials = Depends(verify_bearer_token),
):
    body = await request.json()
    data = body.get("data", {})
    pb_data = body.get("pb_data", {})
    event_id = body.get("event_id")
    event_type = data.get("event_type")
    bill_status = pb_data.get("account_info", {}).get("bill_status")

    if not event_type or not bill_status or not isinstance(event_id, str):
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            content={
                "message": "Validation failed",
                "error": "Validation failed",
                "type": "VALIDATION_ERROR",
            },
        )

    if pool is not None:
        # The raw body, as the connector stores it; request.json() has
        # read it already.
        raw = (await request.body()).decode()
        await pool.execute(INSERT, event_id, raw)

    print(f"Received event: {event_type} | bill status: {bill_status}")

    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED,
        content={"message": "Event accepted for processing"},
    )
