"""HTTPS server: ARM routes, the managed-identity token endpoint and the `/_emulator/` control API.

TLS is done per connection in the handler thread (not on the listening socket), so a slow or
failing handshake never blocks `accept()` for everybody else.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from .emulator import DEFAULT_LIST_PAGE_SIZE, Emulator, check_page_size, load_seed, request_stats
from .eventgrid import EVENTGRID_PATH, PublishRefused, check_publish
from .faults import fault_answer, token_error
from .fleet import fleet_from_request
from .resourcegraph import RESOURCE_GRAPH_PATH, QueryRefused, run_query
from .state import PROVIDER, ArmError, invalid, unquote_etag
from .throttle import check_time_scale, request_kind

if TYPE_CHECKING:
    from .control import EmulatorControl

HANDSHAKE_TIMEOUT = 10.0
TOKEN_PATH = "/msi/token"
CONTROL_PREFIX = "/_emulator/"

# ARM path segments match case-insensitively (`resourceGroups` and `resourcegroups` both occur).
_CLUSTER = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    rf"/providers/{re.escape(PROVIDER)}/managedclusters/(?P<cluster>[^/]+)"
)
_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.IGNORECASE)
ROUTES: dict[str, re.Pattern[str]] = {
    "clusters": re.compile(
        rf"^/subscriptions/(?P<sub>[^/]+)/providers/{re.escape(PROVIDER)}/managedclusters/?$",
        re.IGNORECASE,
    ),
    "clusters_rg": re.compile(
        r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
        rf"/providers/{re.escape(PROVIDER)}/managedclusters/?$",
        re.IGNORECASE,
    ),
    "cluster": re.compile(_CLUSTER + r"/?$", re.IGNORECASE),
    "pools": re.compile(_CLUSTER + r"/agentpools/?$", re.IGNORECASE),
    "pool": re.compile(_CLUSTER + r"/agentpools/(?P<pool>[^/]+)/?$", re.IGNORECASE),
    "operation": re.compile(
        rf"^/subscriptions/(?P<sub>[^/]+)/providers/{re.escape(PROVIDER)}"
        r"/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)/?$",
        re.IGNORECASE,
    ),
}
_FORCE_POOL = re.compile(r"^/_emulator/pools/([^/]+)/([^/]+)/([^/]+)/?$", re.IGNORECASE)
# `*` as the subscription: the first cluster with that resource group and name.
_CLUSTER_TAGS = re.compile(r"^/_emulator/clusters/([^/]+)/([^/]+)/([^/]+)/tags/?$", re.IGNORECASE)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the TCP connection abruptly instead of answering
    fault: str | None = None
    throttled: str | None = None  # the throttle bucket (limit name) that answered 429


def _etag_of(reply: Reply) -> str | None:
    if reply.status >= 300 or not isinstance(reply.body, dict):
        return None
    properties = reply.body.get("properties")
    return properties.get("eTag") if isinstance(properties, dict) else None


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def _arm_error(err: ArmError) -> Reply:
    return Reply(err.status, err.body(), dict(err.headers))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like ARM; every answer has a Content-Length
    timeout = 120  # idle keep-alive connections give their thread back eventually
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stall
    server: EmulatorServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def _read_body(self) -> bytes | None:
        """The raw body; None when it cannot be read (chunked, or a bad Content-Length)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        method = self.command
        raw = self._read_body()
        if raw is None:
            self.close_connection = True  # an unread body would be taken for the next request
            self._send(_error(411, "LengthRequired", "Send the body with a Content-Length."))
            return
        if path.lower().startswith(CONTROL_PREFIX):
            self._send(self._safe(lambda: self._control(method, path, raw)))
            return
        if path.lower().rstrip("/") == EVENTGRID_PATH:
            self._send(self._safe(lambda: self._eventgrid(method, query, raw)))
            return
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        is_token = path.lower().rstrip("/") == TOKEN_PATH
        if is_token:
            kind = "Token"
            reply = self._safe(lambda: self._token(method, query))
        elif RESOURCE_GRAPH_PATH.match(path):
            kind = "ResourceGraphQuery" if method == "POST" else f"{method.capitalize()}Resources"
            reply = self._safe(lambda: self._arm(method, path, query, body))
        else:
            route, match = self._route(path)
            kind = "Unknown"
            if match is not None:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                kind = request_kind(route, method, args).name
            reply = self._safe(lambda: self._arm(method, path, query, body))
        if_match = self.headers.get("If-Match")
        self.emu.log_request(
            method,
            path,
            unquote_etag(if_match),
            None if reply.reset else reply.status,
            reply.fault,
            body if method in ("PUT", "POST", "PATCH") else None,
            _etag_of(reply) if method == "PUT" else None,
            kind,
            reply.throttled,
        )
        self._send(reply)

    def _safe(self, handle: Callable[[], Reply]) -> Reply:
        try:
            return handle()
        except ArmError as err:
            return _arm_error(err)
        except Exception:  # an emulator bug must still answer, and say so on stderr
            traceback.print_exc(file=sys.stderr)
            return _error(500, "InternalServerError", "Emulator error; see its stderr.")

    def _send(self, reply: Reply) -> None:
        if reply.reset:
            self._reset_connection()
            return
        payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reset_connection(self) -> None:
        # SO_LINGER 0 + close: the kernel sends RST, the client sees "connection reset" with no
        # HTTP answer at all (and no TLS close_notify), like a dropped load balancer connection.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"https://{host}" if host else self.server.base_url

    # --- token endpoint ------------------------------------------------------------------------

    def _token(self, method: str, query: dict[str, list[str]]) -> Reply:
        with self.emu.lock:
            fault = self.emu.faults.pick(method, TOKEN_PATH, is_token=True)
        if fault is not None:
            status, headers, body = fault_answer(fault)
            return Reply(status, body, headers, fault=fault.kind)
        if method != "GET":
            return Reply(405, token_error(405, "Use GET for the token endpoint."))
        with self.emu.lock:
            if not self.emu.tokens.header_ok(self.headers.get("X-IDENTITY-HEADER")):
                return Reply(401, token_error(401, "Missing or wrong X-IDENTITY-HEADER."))
            resource = (query.get("resource") or [""])[0]
            if not resource:
                return Reply(400, token_error(400, "The 'resource' query parameter is required."))
            client_ids = query.get("client_id")
            client_id = client_ids[0] if client_ids else None
            return Reply(200, self.emu.tokens.issue(resource, client_id, self.emu.now()))

    # --- Event Grid topic ----------------------------------------------------------------------

    def _eventgrid(self, method: str, query: dict[str, list[str]], raw: bytes) -> Reply:
        """A topic's publish API (eventgrid.py); not in the ARM request log or throttles."""
        emu = self.emu
        if method != "POST":
            return _error(405, "MethodNotAllowed", "Publish with POST.")
        with emu.lock:
            audience = emu.tokens.audience(self.headers.get("Authorization"), emu.now())
            forced = emu.eventgrid_status
        try:
            batch = check_publish(self.headers, raw, audience, query)
        except PublishRefused as refused:
            return Reply(refused.status, refused.body)
        if forced is not None:
            return _error(forced, "ServiceUnavailable", "Forced by the control API.")
        emu.record_events(batch)
        return Reply(200, None)

    # --- ARM -----------------------------------------------------------------------------------

    def _arm(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        """Faults, authentication, Resource Manager's throttle, then the AKS resource provider."""
        emu = self.emu
        with emu.lock:
            fault = emu.faults.pick(method, path, is_token=False)
        if fault is not None:
            if fault.kind == "reset":
                return Reply(0, reset=True, fault=fault.kind)
            status, headers, fault_body = fault_answer(fault)
            return Reply(status, fault_body, headers, fault=fault.kind)

        with emu.lock:
            principal = emu.tokens.principal(self.headers.get("Authorization"), emu.now())
        if principal is None:
            return _error(
                401,
                "InvalidAuthenticationToken",
                "The access token is missing or invalid (not issued by this emulator).",
            )

        if RESOURCE_GRAPH_PATH.match(path):
            return self._resource_graph(method, body, principal)

        in_subscription = _SUBSCRIPTION.match(path)
        subscription = unquote(in_subscription["sub"]) if in_subscription else None
        with emu.lock:
            verdict = emu.throttle.arm(method, subscription, principal, emu.clock())
        if not verdict.allowed:
            return Reply(429, verdict.body, verdict.headers, throttled=verdict.throttled_by)
        reply = self._safe(lambda: self._aks(method, path, query, body))
        # Resource Manager's headers go on every answer it passes on, errors included.
        reply.headers = {**verdict.headers, **reply.headers}
        return reply

    def _aks(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        emu = self.emu
        route, match = self._route(path)
        if match is None:
            return _error(404, "InvalidResourceType", f"The emulator has no resource at {path}.")
        args = {k: unquote(v) for k, v in match.groupdict().items()}
        with emu.lock:
            verdict = emu.throttle.aks(request_kind(route, method, args), args["sub"], emu.clock())
        if not verdict.allowed:
            return Reply(429, verdict.body, verdict.headers, throttled=verdict.throttled_by)
        allowed = {"pool": ("GET", "PUT")}.get(route, ("GET",))
        if method not in allowed:
            return _error(405, "MethodNotAllowed", f"{method} is not supported on this resource.")
        api_version = (query.get("api-version") or ["2026-08-01"])[0]

        with emu.lock:
            now = emu.now()
            state = emu.state
            if route in ("clusters", "clusters_rg"):
                skip = _skip_token(query)
                values, next_skip = state.list_clusters(
                    args["sub"], args.get("rg"), now, skip, emu.list_page_size
                )
                listing: dict[str, Any] = {"value": values}
                if next_skip is not None:
                    listing["nextLink"] = (
                        f"{self._base_url()}{path}?api-version={api_version}&$skipToken={next_skip}"
                    )
                return Reply(200, listing)
            if route == "cluster":
                return Reply(200, state.get_cluster(args["sub"], args["rg"], args["cluster"], now))
            if route == "pools":
                return Reply(200, state.list_pools(args["sub"], args["rg"], args["cluster"], now))
            if route == "operation":
                return Reply(200, state.operation(args["sub"], args["op"], now))
            if method == "GET":
                return Reply(
                    200,
                    state.get_pool(args["sub"], args["rg"], args["cluster"], args["pool"], now),
                )
            pool_body, op = state.put_pool(
                args["sub"],
                args["rg"],
                args["cluster"],
                args["pool"],
                body,
                self.headers.get("If-Match"),
                now,
                emu.operation_seconds,
            )
        headers = {}
        if op is not None:
            headers["Azure-AsyncOperation"] = (
                f"{self._base_url()}/subscriptions/{op.subscription}/providers/{PROVIDER}"
                f"/locations/{op.location}/operations/{op.id}?api-version={api_version}"
            )
        return Reply(200, pool_body, headers)

    def _resource_graph(self, method: str, body: Any, principal: str) -> Reply:
        """Resource Graph: its own per-principal quota (no Resource Manager bucket), then the
        query (resourcegraph.py). The quota headers go on every answer, 400s included."""
        emu = self.emu
        with emu.lock:
            verdict = emu.throttle.resource_graph(principal, emu.clock())
            if not verdict.allowed:
                return Reply(429, verdict.body, verdict.headers, throttled=verdict.throttled_by)
            if method != "POST":
                return Reply(
                    405,
                    {"error": {"code": "MethodNotAllowed", "message": "Query with POST."}},
                    verdict.headers,
                )
            try:
                answer = run_query(emu.state, body, emu.list_page_size)
            except QueryRefused as refused:
                return Reply(400, refused.body(), verdict.headers)
        return Reply(200, answer, verdict.headers)

    @staticmethod
    def _route(path: str) -> tuple[str, re.Match[str] | None]:
        for name, pattern in ROUTES.items():
            match = pattern.match(path)
            if match:
                return name, match
        return "", None

    # --- control API ---------------------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, "BadRequest", "The body must be JSON.")
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "The body must be a JSON object.")
        emu = self.emu
        key = (method, path.lower().rstrip("/"))
        with emu.lock:
            try:
                return self._control_locked(key, path, body)
            except ValueError as err:  # FaultConfigError, ThrottleConfigError, bad fleet
                return _error(400, "BadRequest", str(err))

    def _control_locked(self, key: tuple[str, str], path: str, body: dict[str, Any]) -> Reply:
        emu = self.emu
        if key == ("GET", "/_emulator/requests"):
            return Reply(200, list(emu.requests))
        if key == ("DELETE", "/_emulator/requests"):
            emu.requests.clear()
            return Reply(200, {"cleared": True})
        if key == ("GET", "/_emulator/pools"):
            return Reply(200, emu.state.snapshot(emu.now()))
        if key == ("GET", "/_emulator/clusters"):
            return Reply(200, emu.state.cluster_summaries())
        if key == ("GET", "/_emulator/stats"):
            return Reply(200, request_stats(emu.requests))
        if key == ("POST", "/_emulator/reset"):
            seed = body.get("seed")
            if seed is not None and not isinstance(seed, dict):
                return _error(400, "BadRequest", "'seed' must be an object.")
            if body.get("fleet") is not None:
                if seed is not None:
                    return _error(400, "BadRequest", "Give 'seed' or 'fleet', not both.")
                seed = fleet_from_request(body["fleet"], emu.seed)
            emu.reset(seed)
            return Reply(200, {"reset": True, "clusters": len(emu.state.clusters)})
        if key == ("GET", "/_emulator/events"):
            return Reply(200, list(emu.events))
        if key == ("DELETE", "/_emulator/events"):
            emu.events.clear()
            return Reply(200, {"cleared": True})
        if key == ("POST", "/_emulator/eventgrid"):
            status = body.get("status")
            if status is not None and (
                isinstance(status, bool) or not isinstance(status, int) or not 400 <= status < 600
            ):
                return _error(400, "BadRequest", "'status' must be an HTTP error status or null.")
            emu.eventgrid_status = status
            return Reply(200, {"status": status})
        if key == ("GET", "/_emulator/faults"):
            return Reply(200, emu.faults.to_dict())
        if key == ("POST", "/_emulator/faults"):
            emu.faults.configure(body.get("rules"), body.get("random"))
            return Reply(200, emu.faults.to_dict())
        if key == ("DELETE", "/_emulator/faults"):
            emu.faults.clear()
            return Reply(200, emu.faults.to_dict())
        if key == ("GET", "/_emulator/config"):
            return Reply(200, emu.config())
        if key == ("POST", "/_emulator/config"):
            return self._set_config(body)
        if key == ("GET", "/_emulator/throttle"):
            return Reply(200, emu.throttle.to_dict(emu.clock()))
        if key == ("POST", "/_emulator/throttle"):
            if set(body) - {"limits"}:
                return _error(400, "BadRequest", "The body takes only 'limits'.")
            emu.throttle.set_limits(body.get("limits", {}))
            return Reply(200, emu.throttle.to_dict(emu.clock()))
        if key == ("DELETE", "/_emulator/throttle"):
            emu.throttle.refill_all()
            return Reply(200, emu.throttle.to_dict(emu.clock()))
        tags = _CLUSTER_TAGS.match(path)
        if key[0] == "POST" and tags:
            sub, rg, cluster = (unquote(g) for g in tags.groups())
            if set(body) != {"tags"}:
                return _error(400, "BadRequest", "The body takes 'tags' (an object) only.")
            new_tags = emu.state.set_cluster_tags(
                None if sub == "*" else sub, rg, cluster, body["tags"]
            )
            return Reply(200, {"tags": new_tags})
        force = _FORCE_POOL.match(path)
        if key[0] == "POST" and force:
            rg, cluster, pool = (unquote(g) for g in force.groups())
            settle_after = body.pop("settleAfterSeconds", None)
            if settle_after is not None and not isinstance(settle_after, (int, float)):
                return _error(400, "BadRequest", "'settleAfterSeconds' must be a number.")
            try:
                props = emu.state.force_pool(rg, cluster, pool, body, emu.now(), settle_after)
            except ArmError as err:
                return _arm_error(err)
            return Reply(200, props)
        return _error(404, "NotFound", f"No control route {key[0]} {path}.")

    def _set_config(self, body: dict[str, Any]) -> Reply:
        """Change any of the settings; all are checked before any changes."""
        emu = self.emu
        known = {"operation_seconds", "throttling", "throttle_time_scale", "list_page_size"}
        if not body or set(body) - known:
            return _error(400, "BadRequest", f"Give some of {sorted(known)} and nothing else.")
        seconds = body.get("operation_seconds", emu.operation_seconds)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            return _error(400, "BadRequest", "'operation_seconds' must be a number >= 0.")
        enabled = body.get("throttling", emu.throttle.enabled)
        if not isinstance(enabled, bool):
            return _error(400, "BadRequest", "'throttling' must be true or false.")
        scale = check_time_scale(body.get("throttle_time_scale", emu.throttle.time_scale))
        page_size = check_page_size(body.get("list_page_size", emu.list_page_size))
        emu.operation_seconds = float(seconds)
        emu.throttle.enabled = enabled
        emu.throttle.set_time_scale(scale, emu.clock())
        emu.list_page_size = page_size
        return Reply(200, emu.config())


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True  # never wait for idle keep-alive connections on shutdown
    request_queue_size = 128

    def __init__(
        self,
        emulator: Emulator,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.emulator = emulator
        self.ssl_context = ssl_context
        self.verbose = verbose
        super().__init__((host, port), Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"https://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError:  # includes ssl.SSLError: client gave up or does not trust our CA
            return
        try:
            Handler(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return  # clients that hang up mid-request are normal (and we reset some ourselves)
        super().handle_error(request, client_address)


def _skip_token(query: dict[str, list[str]]) -> int:
    raw = (query.get("$skipToken") or query.get("$skiptoken") or ["0"])[0]
    if not raw.isdigit():
        raise invalid(f"The $skipToken '{raw}' is not valid.")
    return int(raw)


def make_tls(state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """A fresh CA (written to `state_dir/ca.pem`) and a server context for 127.0.0.1."""
    ca = trustme.CA(organization_name="AKS emulator")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_path = state_dir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return context, ca_path


@dataclass
class RunningEmulator:
    """An emulator serving from a background thread of this process."""

    server: EmulatorServer
    ca_bundle: str
    thread: threading.Thread | None = None
    owned_dir: Path | None = None  # a temp state dir to delete on stop

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    @property
    def arm_endpoint(self) -> str:
        return self.server.base_url

    @property
    def identity_endpoint(self) -> str:
        return self.arm_endpoint + TOKEN_PATH

    @property
    def identity_header(self) -> str:
        return self.emulator.tokens.identity_header

    def ready_info(self) -> dict[str, str]:
        return {
            "arm_endpoint": self.arm_endpoint,
            "identity_endpoint": self.identity_endpoint,
            "identity_header": self.identity_header,
            "ca_bundle": self.ca_bundle,
        }

    def env(self) -> dict[str, str]:
        from .control import app_env

        return app_env(
            self.arm_endpoint, self.identity_endpoint, self.identity_header, self.ca_bundle
        )

    @property
    def control(self) -> EmulatorControl:
        from .control import EmulatorControl  # requests is only needed by callers

        return EmulatorControl(self.arm_endpoint, self.ca_bundle)

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving (when started by `start_server`) and release the socket."""
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=5)
            self.thread = None
        self.close()

    def close(self) -> None:
        self.server.server_close()
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_server(
    seed_path: Path | str | None = None,
    operation_seconds: float = 1.0,
    state_dir: Path | str | None = None,
    port: int = 0,
    identity_header: str | None = None,
    verbose: bool = False,
    throttling: bool = True,
    throttle_time_scale: float = 1.0,
    list_page_size: int = DEFAULT_LIST_PAGE_SIZE,
) -> RunningEmulator:
    """Bind (listening from here on) without serving yet; `serve_forever` or a thread serves."""
    owned = None
    if state_dir is None:
        owned = Path(tempfile.mkdtemp(prefix="aks-emulator-"))
    directory = Path(state_dir) if state_dir is not None else owned
    assert directory is not None
    context, ca_path = make_tls(directory)
    emulator = Emulator(
        load_seed(seed_path),
        operation_seconds,
        identity_header,
        throttling=throttling,
        throttle_time_scale=throttle_time_scale,
        list_page_size=list_page_size,
    )
    server = EmulatorServer(emulator, context, port=port, verbose=verbose)
    return RunningEmulator(server=server, ca_bundle=str(ca_path), owned_dir=owned)


def start_server(
    seed_path: Path | str | None = None,
    operation_seconds: float = 1.0,
    state_dir: Path | str | None = None,
    port: int = 0,
    identity_header: str | None = None,
    throttling: bool = True,
    throttle_time_scale: float = 1.0,
    list_page_size: int = DEFAULT_LIST_PAGE_SIZE,
) -> RunningEmulator:
    """In-process emulator serving from a daemon thread; call `.stop()` (or use `with`)."""
    running = create_server(
        seed_path,
        operation_seconds,
        state_dir,
        port,
        identity_header,
        throttling=throttling,
        throttle_time_scale=throttle_time_scale,
        list_page_size=list_page_size,
    )
    running.thread = threading.Thread(
        target=running.serve_forever, name="aks-emulator", daemon=True
    )
    running.thread.start()
    return running
