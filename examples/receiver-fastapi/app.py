"""A FastAPI webhook receiver for Hookbridge.

The point: this application has no Kafka consumer. Hookbridge consumes the
topic and POSTs each record here (or a batch of them); the application
verifies the request, skips what it has already handled, does its work, and
answers. Ordering, retries, backpressure and dead-lettering are the bridge's.

What it does with each request:

* verifies the Standard Webhooks signature with the ``standardwebhooks``
  package against every secret in WEBHOOK_SECRETS (two during a rotation),
  and a body that is not UTF-8, which that package cannot take, with an HMAC
  over the raw bytes; a request that fails is answered 401 and never handled;
* dedupes by webhook-id (``<topic>-<partition>-<offset>``, the same on every
  redelivery), in memory;
* reads at most MAX_BODY_BYTES of a request, and none of one that lacks the
  webhook-* headers or whose timestamp is stale;
* handles single-record requests (the body is the record value) and batch
  requests (``application/cloudevents-batch+json`` with a
  ``hookbridge-batch-size`` header), answering a batch with
  ``{"failed": [ids]}`` for the records that failed: only those are retried;
  a batch none of whose records could be handled is answered 500, as
  sdk/webhook's Handler does, so that the bridge pauses instead of spending
  the records' attempts;
* continues the bridge's trace (traceparent) with OpenTelemetry.

Environment:

* WEBHOOK_SECRETS: the signing secrets (``whsec_...``), separated by commas
  or spaces. Required.
* ORDER_LOG: when "1", GET /stats also lists, per topic/partition/key, every
  offset handled, in order (memory grows with every record: for tests).
* MAX_BODY_BYTES: the largest request body read (default 4 MiB, the bridge's
  default batch size with room to spare); a longer one is answered 413.
* FAIL_EVERY_NTH: when set to N > 0, the first delivery of every record whose
  Kafka offset is a multiple of N fails (500 for a single record, listed in
  ``failed`` in a batch, 500 for a batch when no record of it was handled): a
  stand-in for a handler that fails sometimes.
* OTEL_EXPORTER_OTLP_ENDPOINT: an OTLP/gRPC endpoint (e.g.
  http://127.0.0.1:4317); spans are exported only when it is set. The service
  name is "receiver-fastapi" (OTEL_SERVICE_NAME overrides it).

Endpoints: POST /webhook (any path under /webhook too), GET /stats (counters
as JSON, for tests and curious operators), GET /traces (the trace context of
recent deliveries), GET /healthz.

Run it: ``uvicorn app:app --port 8000`` (see README.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from standardwebhooks.webhooks import Webhook

log = logging.getLogger("receiver-fastapi")

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
# How many webhook-ids (and trace records) are remembered. A redelivery comes
# within minutes of the first delivery; size this to a few minutes of traffic.
REMEMBER = int(os.environ.get("DEDUPE_CAPACITY", "100000"))
MAX_BODY = int(os.environ.get("MAX_BODY_BYTES", str(4 << 20)))
TOLERANCE = 5 * 60  # seconds of clock difference accepted, as standardwebhooks does


def _secrets() -> list[str]:
    raw = os.environ.get("WEBHOOK_SECRETS", "")
    secrets = [s for s in raw.replace(",", " ").split() if s]
    if not secrets:
        raise RuntimeError("set WEBHOOK_SECRETS to the route's signing secret(s), whsec_...")
    return secrets


def _key(secret: str) -> bytes:
    """The HMAC key of a secret: the standard base64 after ``whsec_``, with or
    without padding (as the bridge reads it); any other character is refused."""
    enc = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(enc + "=" * (-len(enc) % 4), validate=True)
    except binascii.Error:
        raise RuntimeError("a secret in WEBHOOK_SECRETS is not whsec_ followed by standard base64") from None


SECRETS = _secrets()
VERIFIERS = [Webhook(s) for s in SECRETS]
KEYS = [_key(s) for s in SECRETS]
FAIL_EVERY_NTH = int(os.environ.get("FAIL_EVERY_NTH", "0") or 0)
ORDER_LOG = os.environ.get("ORDER_LOG") == "1"


class LRU(OrderedDict):
    """An OrderedDict that forgets its oldest entries beyond a capacity."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def remember(self, key: str, value: Any = True) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class State:
    """What the receiver has seen. Only the event loop touches it, so it needs
    no lock (every handler is ``async`` and does not await while updating)."""

    def __init__(self) -> None:
        self.requests = 0  # POSTs
        self.rejected = 0  # requests that failed verification (401)
        self.batches = 0  # verified batch requests
        self.max_batch = 0  # most records in one batch
        self.received = 0  # records in verified requests
        self.accepted = 0  # records handled for the first time
        self.duplicates = 0  # records whose webhook-id was handled before
        self.failed = 0  # records answered as failed
        self.order_violations = 0  # a key's record handled after a later one
        self.done: LRU = LRU(REMEMBER)  # webhook-ids handled
        self.failed_once: LRU = LRU(REMEMBER)  # webhook-ids failed on purpose
        self.last_offset: LRU = LRU(REMEMBER)  # per topic/partition/key: the last offset handled
        self.order: dict[str, list[int]] = {}  # with ORDER_LOG: per topic/partition/key, offsets handled in order
        self.traces: LRU = LRU(REMEMBER)  # webhook-id -> trace context

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "batches": self.batches,
            "max_batch": self.max_batch,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "order_violations": self.order_violations,
            "keys": len(self.last_offset),
            "order": self.order,
        }


state = State()


def _setup_tracing(app: FastAPI) -> Optional[Any]:
    """Instrument the app so that each request's span continues the trace of
    the bridge's traceparent. Spans are exported only when an OTLP endpoint
    is configured."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    name = os.environ.get("OTEL_SERVICE_NAME") or "receiver-fastapi"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="stats,traces,healthz")
    return provider


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    if provider is not None:
        provider.shutdown()  # flushes spans not exported yet


app = FastAPI(title="Hookbridge receiver", lifespan=lifespan)
provider = _setup_tracing(app)


# ---- verification -----------------------------------------------------------


def verify(body: bytes, headers: dict[str, str]) -> Optional[str]:
    """Returns None when some secret verifies the request, else the reason.
    The standardwebhooks package checks the signature (constant time, every
    v1 signature of the header) and the timestamp (5 minutes of tolerance)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # standardwebhooks signs and verifies text: a binary body (a record
        # value that is not UTF-8) is checked over its bytes instead.
        return verify_bytes(body, headers)
    reason = "no secret verifies the request"
    for wh in VERIFIERS:
        try:
            wh.verify(text, headers, json_parse=False)
            return None
        except Exception as e:  # WebhookVerificationError, or a malformed header
            reason = str(e) or type(e).__name__
    return reason


def verify_bytes(body: bytes, headers: dict[str, str]) -> Optional[str]:
    """What verify returns, checked over the raw body (any body, text or
    not): the headers and the timestamp as precheck checks them, then every
    v1 signature of the header against every secret, in constant time. A
    signature is compared as the exact base64 text of the HMAC, in bytes
    (compare_digest refuses a str that is not ASCII)."""
    reason = precheck(headers)
    if reason is not None:
        return reason
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    wanted = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in KEYS]
    for field in headers["webhook-signature"].split():
        version, _, sig = field.partition(",")
        if version != "v1":
            continue
        for want in wanted:
            if hmac.compare_digest(sig.encode(), want):
                return None
    return "no secret verifies the request"


# ---- handling ---------------------------------------------------------------


def decode(value: Optional[str], encoding: Optional[str], charset: str = "utf-8") -> Optional[bytes]:
    """A key as the bridge sends it: text, or base64 when flagged so; None for
    a null key. charset turns the text back into the key's bytes: "latin-1"
    for a header value, which Starlette decodes as Latin-1 (the bytes on the
    wire are the key's UTF-8), "utf-8" for a string of a batch's JSON."""
    if value is None:
        return None
    if (encoding or "").lower() == "base64":
        return base64.b64decode(value, validate=True)
    return value.encode(charset)


def handle(record_id: str, topic: str, partition: int, offset: int, key: Optional[bytes], body: bytes) -> bool:
    """Handles one record; returns False when it failed and must be retried.
    A real application does its work here (write to its database, call a
    service ...); this one counts, and checks per-key order."""
    state.received += 1
    if record_id in state.done:
        state.duplicates += 1
        state.done.remember(record_id)
        return True
    if FAIL_EVERY_NTH > 0 and offset % FAIL_EVERY_NTH == 0 and record_id not in state.failed_once:
        state.failed_once.remember(record_id)
        state.failed += 1
        return False
    state.done.remember(record_id)
    state.accepted += 1
    lane = f"{topic}/{partition}/" + ("<null>" if key is None else key.decode("utf-8", "backslashreplace"))
    last = state.last_offset.get(lane)
    if last is not None and offset <= last:
        state.order_violations += 1
    state.last_offset.remember(lane, offset)
    if ORDER_LOG:
        state.order.setdefault(lane, []).append(offset)
    return True


def remember_trace(record_id: str, traceparent: Optional[str]) -> None:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    parent = getattr(span, "parent", None)
    state.traces.remember(
        record_id,
        {
            "traceparent": traceparent,
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        },
    )


@app.post("/webhook")
@app.post("/webhook/{rest:path}")
async def webhook(request: Request, rest: str = "") -> Response:
    state.requests += 1
    headers = dict(request.headers)  # lower-case names
    reason = precheck(headers)
    body = None
    if reason is None:
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        reason = verify(body, headers)
    if reason is not None:
        state.rejected += 1
        log.warning("rejected %s: %s", headers.get("webhook-id"), reason)
        return JSONResponse({"error": reason}, status_code=401)

    # The content type alone does not make a batch: a single record's request
    # carries the record's own content-type, which may be the batch one.
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == BATCH_CONTENT_TYPE and "hookbridge-batch-size" in headers:
        return handle_batch(body, headers)

    try:
        record_id = headers["webhook-id"]
        topic = headers["kafka-topic"]
        partition = int(headers["kafka-partition"])
        offset = int(headers["kafka-offset"])
        key = decode(headers.get("kafka-key"), headers.get("kafka-key-encoding"), "latin-1")
    except (KeyError, ValueError, binascii.Error) as e:
        return JSONResponse({"error": f"not a Hookbridge request: {e}"}, status_code=400)
    remember_trace(record_id, headers.get("traceparent"))
    if not handle(record_id, topic, partition, offset, key, body):
        return JSONResponse({"error": "failed on purpose (FAIL_EVERY_NTH)"}, status_code=500)
    return Response(status_code=204)


def precheck(headers: dict[str, str]) -> Optional[str]:
    """What rules a request out before its body is read: a missing webhook-*
    header, or a timestamp outside the tolerance. None when it may be read."""
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not headers.get(name):
            return f"missing {name}"
    try:
        ts = int(headers["webhook-timestamp"])
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs(time.time() - ts) > TOLERANCE:
        return "webhook-timestamp is too old or too new"
    return None


async def read_body(request: Request) -> Optional[bytes]:
    """The request's body, or None when it is longer than MAX_BODY (read no
    further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def handle_batch(body: bytes, headers: dict[str, str]) -> Response:
    try:
        events = json.loads(body)
        if not isinstance(events, list):
            raise ValueError("not a JSON array")
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested too deep
        return JSONResponse({"error": f"bad batch: {e}"}, status_code=400)
    state.batches += 1
    state.max_batch = max(state.max_batch, len(events))
    failed: list[str] = []
    blocked: set[tuple] = set()  # lanes with a failed record: later ones wait for the retry
    done = False  # a record was handled, or skipped as a duplicate
    for ev in events:
        try:
            topic, partition, offset = ev["topic"], int(ev["partition"]), int(ev["offset"])
            key = decode(ev.get("key"), ev.get("keyencoding"))
            if "data_base64" in ev:
                data = base64.b64decode(ev["data_base64"])
            elif "data" in ev:
                data = json.dumps(ev["data"]).encode()
            else:
                data = b""
        except (KeyError, TypeError, ValueError, RecursionError, binascii.Error) as e:
            return JSONResponse({"error": f"bad batch event: {e}"}, status_code=400)
        # The id to dedupe on and to name in "failed" is the record's
        # webhook-id; the event's own id differs for a record that was a
        # CloudEvent already.
        record_id = f"{topic}-{partition}-{offset}"
        lane = (topic, partition, key)
        if lane in blocked or not handle(record_id, topic, partition, offset, key, data):
            failed.append(record_id)
            blocked.add(lane)
            continue
        done = True
        remember_trace(record_id, headers.get("traceparent"))
    if failed and not done:
        # Nothing of the batch could be done (in a real application: its
        # database is down). Answer as for a single record, as sdk/webhook's
        # Handler does: a failed list would tell the bridge that the receiver
        # is up, and the records would spend their attempts and be
        # dead-lettered instead of the route pausing.
        return JSONResponse({"error": f"no record of the batch was handled ({len(failed)} failed)"}, status_code=500)
    return JSONResponse({"failed": failed})


# ---- introspection ----------------------------------------------------------


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return state.stats()


@app.get("/traces")
async def traces() -> dict[str, Any]:
    return dict(state.traces)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
