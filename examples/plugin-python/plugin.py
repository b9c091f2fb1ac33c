#!/usr/bin/env python3
"""A Hookbridge handler plugin in Python.

It does what examples/plugin-go does: adds "enriched_by" and "source_id" to
every JSON object it receives and replies with the result; a tombstone (a
null value) is passed on as a tombstone; a value that is not a JSON object
is a permanent error (the record is dead-lettered). With
ENRICH_ACK_ONLY=1 it acknowledges every record without a reply.

Nothing here is Go-specific: the plugin speaks the gRPC service of
sdk/proto/hookbridge/handler/v1/handler.proto (stubs generated into
hookbridge/handler/v1 by `make proto`) and go-plugin's start-up protocol:

  1. check the magic cookie HOOKBRIDGE_PLUGIN=hookbridge-handler;
  2. with AutoMTLS (the host always asks for it), read the host's
     certificate from PLUGIN_CLIENT_CERT, make a self-signed certificate
     for "localhost", and serve TLS that requires the host's certificate;
  3. serve the Handler service and the gRPC health service, reporting
     SERVING for the service name "plugin";
  4. print the handshake line 1|1|tcp|127.0.0.1:PORT|grpc|CERT on stdout,
     CERT being the base64 DER of the certificate, unpadded.

Log lines go to stderr as JSON in go-plugin's format, so that the bridge
logs them at their level with plugin=<name>.

    plugins:
      enrich-py:
        command: ["examples/plugin-python/.venv/bin/python", "examples/plugin-python/plugin.py"]
"""

import base64
import datetime
import json
import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hookbridge.handler.v1 import handler_pb2, handler_pb2_grpc  # noqa: E402

MAGIC_COOKIE_KEY = "HOOKBRIDGE_PLUGIN"
MAGIC_COOKIE_VALUE = "hookbridge-handler"
CORE_PROTOCOL_VERSION = 1  # go-plugin's
APP_PROTOCOL_VERSION = 1  # hookbridge.handler.v1
DEFAULT_MAX_MESSAGE_BYTES = 4 << 20
METADATA_LIMIT = 64 << 10  # gRPC metadata a call may carry (docs/plugins.md)
GRACE_PERIOD_SECONDS = 10

log = logging.getLogger("plugin-python")


class HCLogFormatter(logging.Formatter):
    """Formats records as the JSON lines go-plugin reads from stderr."""

    LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error", "CRITICAL": "error"}

    def format(self, record):
        ts = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "@level": self.LEVELS.get(record.levelname, "info"),
            "@message": record.getMessage(),
            "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        }
        entry.update(getattr(record, "attrs", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class Number(str):
    """A JSON number as it was written. Decoded to int or float, an integer
    keeps its digits but 1e400 becomes inf, which json.dumps writes as
    Infinity, and that is not JSON."""


def refuse_constant(name):
    raise ValueError("%s is not a JSON value" % name)


def trace_attrs(context):
    """The trace_id and span_id of a call's traceparent, the keys the bridge's
    own log lines use, so a search for a record's trace finds this plugin's
    lines too; nothing for a call without a valid one."""
    for key, value in context.invocation_metadata():
        if key != "traceparent":
            continue
        parts = value.split("-")
        if (len(parts) >= 4 and len(parts[1]) == 32 and len(parts[2]) == 16
                and all(c in "0123456789abcdef" for c in parts[1] + parts[2])
                and parts[1] != "0" * 32 and parts[2] != "0" * 16):
            return {"trace_id": parts[1], "span_id": parts[2]}
    return {}


def decode_object(value):
    """Returns (the JSON object in value, "") or (None, why not). Numbers
    stay as written (Number); NaN and Infinity, which json.loads takes by
    default, are refused as they are not JSON."""
    try:
        obj = json.loads(value, parse_int=Number, parse_float=Number, parse_constant=refuse_constant)
    except ValueError as e:  # also UnicodeDecodeError
        return None, str(e)
    except RecursionError:
        return None, "it is nested too deeply"
    if not isinstance(obj, dict):
        return None, "its value is a %s" % type(obj).__name__
    return obj, ""


def encode(v):
    """Writes v, decoded by decode_object, as compact JSON."""
    if isinstance(v, Number):
        return str.__str__(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + encode(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(encode(x) for x in v) + "]"
    return json.dumps(v)


class Enricher(handler_pb2_grpc.HandlerServicer):
    """The Handler service: one call per delivery attempt of a record."""

    def __init__(self, ack_only):
        self.ack_only = ack_only

    def Handle(self, request, context):
        if self.ack_only:
            return handler_pb2.HandleResponse()
        if not request.record.HasField("value"):
            # A tombstone (a null value): passed on as a tombstone. An
            # output without a value is produced as null, and without a key
            # it takes the record's own.
            return handler_pb2.HandleResponse(outputs=[handler_pb2.Output()])
        obj, why = decode_object(request.record.value)
        if obj is None:
            return handler_pb2.HandleResponse(error=handler_pb2.Error(
                kind=handler_pb2.ERROR_KIND_PERMANENT,
                message="plugin-python: %s is not a JSON object: %s" % (request.id, why),
            ))
        obj["enriched_by"] = "plugin-python"
        obj["source_id"] = request.id
        try:
            out = encode(obj)
        except RecursionError:
            return handler_pb2.HandleResponse(error=handler_pb2.Error(
                kind=handler_pb2.ERROR_KIND_PERMANENT,
                message="plugin-python: %s is nested too deeply to write back" % request.id,
            ))
        log.debug("enriched", extra={"attrs": {"id": request.id, **trace_attrs(context)}})
        return handler_pb2.HandleResponse(outputs=[handler_pb2.Output(
            value=out.encode(),
            headers=[handler_pb2.Header(key="content-type", value=b"application/json")],
        )])


def server_credentials():
    """AutoMTLS: a one-time certificate, and the host's as the only client CA.

    Returns the credentials and the certificate for the handshake line, or
    (None, "") when the host did not ask for TLS.
    """
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    if not client_cert:
        return None, ""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hookbridge plugin")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_agreement=True,
                                     key_cert_sign=True, content_commitment=False, data_encipherment=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                        require_client_auth=True)
    der = cert.public_bytes(serialization.Encoding.DER)
    return creds, base64.b64encode(der).decode().rstrip("=")


def controller_service(stop):
    """go-plugin's plugin.GRPCController: the host calls Shutdown when it
    closes the plugin. Its messages are empty, so no stubs are needed."""
    def shutdown(request, context):
        stop.set()
        return b""
    return grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(
            shutdown, request_deserializer=bytes, response_serializer=lambda r: b""),
    })


def watch_parent(stop):
    """Sets stop once the process that started the plugin is gone.

    A bridge killed without stopping its plugins (kill -9, a crash) leaves
    the plugin to another parent; without this it would live on, holding
    its connections. Stopping is then what SIGTERM does: the calls in
    flight finish within the grace period (the next bridge redelivers what
    they were doing). As in the Go SDK, the parent is checked every second,
    and only on POSIX: elsewhere os.getppid() does not change when the
    parent exits.
    """
    if os.name != "posix":
        return
    parent = os.getppid()

    def watch():
        while not stop.wait(1):
            if os.getppid() != parent:
                log.info("stopping: the parent process is gone", extra={"attrs": {"parent_pid": parent}})
                stop.set()
                return

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def main():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HCLogFormatter())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)

    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("plugin-python: this program is a Hookbridge plugin: name it in plugins.<name>.command "
              "of the bridge's configuration instead of running it directly", file=sys.stderr)
        return 1
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(APP_PROTOCOL_VERSION)).split(",")
    if str(APP_PROTOCOL_VERSION) not in versions:
        log.error("no common protocol version", extra={"attrs": {"host_versions": versions}})
        return 1
    max_bytes = int(os.environ.get("HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES))

    stop = threading.Event()
    watch_parent(stop)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            # A call's metadata carries the record's tracestate and baggage
            # (up to about 5 KB; gRPC C-core accepts 8 KB by default): room to
            # spare for a bridge that passes more on.
            ("grpc.max_metadata_size", METADATA_LIMIT),
        ],
    )
    handler_pb2_grpc.add_HandlerServicer_to_server(Enricher(os.environ.get("ENRICH_ACK_ONLY") == "1"), server)
    health_servicer = health.HealthServicer()
    health_servicer.set("plugin", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_generic_rpc_handlers((controller_service(stop),))

    creds, cert = server_credentials()
    if creds is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("%d|%d|tcp|127.0.0.1:%d|grpc|%s" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port, cert), flush=True)
    log.info("serving", extra={"attrs": {"port": port, "max_message_bytes": max_bytes}})

    stop.wait()
    server.stop(GRACE_PERIOD_SECONDS).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
