"""The worker's HTTP server: ``@app.page(path)`` views, ``/status`` and ``/metrics``.

.. code-block:: python

    import sabot as faust
    from sabot.faust.web import View

    app = faust.App("shop", broker="memory://", web_port=6066)
    orders = app.Table("orders", default=int)

    @app.page("/orders/{customer}/")
    async def get_orders(web, request, customer):
        return web.json({"customer": customer, "orders": orders[customer]})

    @app.page("/echo/")
    class Echo(View):
        async def post(self, request):
            return self.json(await request.json())

A function view gets the view object (``web``: ``json()``, ``text()``,
``html()``, ``bytes()``, ``error()``, ``notfound()`` as in Faust), the
:class:`Request` and the path parameters (``{name}`` or ``{name:regex}``).
A :class:`View` subclass answers the methods it defines (``get``, ``post``,
``put``, ``patch``, ``delete``); others get 405.

Built-in routes: ``/status`` (JSON: app, agents with their crash / restart
counters, tables, timers, topics, the monitor's counters) and ``/metrics``
(the same counters in the Prometheus text format).

The server is the standard library's ``asyncio.start_server`` with a small
HTTP/1.1 reader (keep-alive, ``Content-Length`` bodies up to 8 MiB; no
chunked request bodies, no TLS: put a reverse proxy in front for those). It
listens on ``app.conf.web_host:app.conf.web_port`` (port 0 takes a free port,
see :attr:`WebServer.port`) and runs as an app service of priority 40, so it
starts after tables, agents and timers and stops first.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("sabot.faust.web")

SERVICE_PRIORITY = 40
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_TIMEOUT_S = 30.0

__all__ = [
    "HTTPError",
    "Request",
    "Response",
    "View",
    "WebServer",
    "install",
    "page",
    "prometheus_text",
    "status",
]


class HTTPError(Exception):
    """Raise from a view to answer ``status`` with ``{"error": detail}``."""

    def __init__(self, status: int, detail: str | None = None) -> None:
        super().__init__(detail or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail or HTTPStatus(status).phrase


class Response:
    """An HTTP response: status, headers and the body bytes."""

    def __init__(
        self,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = {"Content-Type": content_type, **(headers or {})}

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]


class Request:
    """A parsed HTTP request (the subset of aiohttp's that Faust views use)."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        match_info: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = unquote(parts.path)
        self.raw_path = target
        self.query_string = parts.query
        self.query_all = parse_qs(parts.query, keep_blank_values=True)
        #: the first value of each query parameter (``request.query["n"]``)
        self.query = {k: v[0] for k, v in self.query_all.items()}
        self.headers = headers  # lower-case names
        self.body = body
        self.match_info = match_info or {}

    async def read(self) -> bytes:
        return self.body

    async def text(self) -> str:
        return self.body.decode("utf-8")

    async def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise HTTPError(400, f"request body is not JSON: {e}") from e


class View:
    """A web view; subclasses define ``async def get(self, request, **params)``
    and the other methods they answer. ``self.app`` is the App."""

    methods = ("get", "post", "put", "patch", "delete")

    def __init__(self, app: Any, web: WebServer | None = None) -> None:
        self.app = app
        self.web = web

    # Faust's response helpers
    def json(
        self, value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        body = json.dumps(value, default=_json_default).encode()
        return Response(body, status=status, content_type="application/json", headers=headers)

    def text(
        self,
        value: str,
        *,
        content_type: str = "text/plain",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return Response(value.encode(), status=status, content_type=content_type, headers=headers)

    def html(
        self, value: str, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return self.text(value, content_type="text/html", status=status, headers=headers)

    def bytes(
        self,
        value: bytes,
        *,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return Response(value, status=status, content_type=content_type, headers=headers)

    def error(self, status: int, reason: str, **kwargs: Any) -> Response:
        return self.json({"error": reason, **kwargs}, status=status)

    def notfound(self, reason: str = "Not Found", **kwargs: Any) -> Response:
        return self.error(404, reason, **kwargs)

    @classmethod
    def from_handler(cls, fun: Callable[..., Any]) -> type[View]:
        """A View class whose every method calls the function ``fun(view,
        request, **params)`` (Faust's function views)."""
        if not callable(fun):
            raise TypeError(f"app.page: view handler must be callable, not {fun!r}")
        attrs: dict[str, Any] = {m: fun for m in cls.methods}
        attrs.update(__doc__=fun.__doc__, __module__=fun.__module__)
        return type(fun.__name__, (cls,), attrs)


def _json_default(obj: Any) -> Any:
    for attr in ("asdict", "to_representation"):
        f = getattr(obj, attr, None)
        if callable(f):
            return f()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]+))?\}")


def _compile_path(path: str) -> re.Pattern[str]:
    """``/user/{name}/`` -> a regex with named groups; a trailing slash is optional."""
    if not path.startswith("/"):
        raise ValueError(f"app.page: path must start with '/', got {path!r}")
    out = []
    pos = 0
    for m in _PARAM.finditer(path):
        out.append(re.escape(path[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})")
        pos = m.end()
    out.append(re.escape(path[pos:].rstrip("/")))
    return re.compile("^" + "".join(out) + "/?$")


class _Route:
    def __init__(self, path: str, view: type[View], name: str) -> None:
        self.path = path
        self.pattern = _compile_path(path)
        self.view = view
        self.name = name


# -- /status and /metrics ----------------------------------------------------------------


def _table_info(table: Any) -> dict[str, Any]:
    info = getattr(table, "info", None)
    if callable(info):
        try:
            return dict(info())
        except Exception as e:  # noqa: BLE001 - a status page must not fail on one table
            return {"name": getattr(table, "name", "?"), "error": str(e)}
    out: dict[str, Any] = {"name": getattr(table, "name", "?")}
    try:
        out["keys"] = len(table)
    except TypeError:
        pass
    return out


def _per_agent(monitor: dict[str, Any], key: str, agent: Any, name: str, default: Any) -> Any:
    """The monitor's counter of one agent, kept under its full or its short name."""
    counters = monitor.get(key, {})
    for n in (name, getattr(agent, "name", None), getattr(agent, "short_name", None)):
        if n is not None and n in counters:
            return counters[n]
    return default


def status(app: Any) -> dict[str, Any]:
    """The JSON of ``/status``."""
    monitor = app.monitor.snapshot() if getattr(app, "monitor", None) is not None else {}
    agents = []
    for name, agent in app.agents.items():
        info = agent.info() if callable(getattr(agent, "info", None)) else {"name": name}
        info["events"] = _per_agent(monitor, "agent_events", agent, name, 0)
        info["crashes"] = _per_agent(monitor, "agent_crashes", agent, name, 0)
        info["restarts"] = _per_agent(monitor, "agent_restarts", agent, name, 0)
        info["circuit_open"] = _per_agent(monitor, "circuit_open", agent, name, False)
        agents.append(info)
    timers = getattr(app, "_sabot_timer_service", None)
    return {
        "app": app.conf.id,
        "broker": app.conf.broker,
        "started": bool(getattr(app, "started", False)),
        "agents": agents,
        "tables": [_table_info(t) for t in app.tables.values()],
        "timers": timers.info() if timers is not None else [],
        "topics": sorted(app.topics),
        "pages": [r.path for r in _web(app).routes] if _web(app) else [],
        "monitor": monitor,
    }


def _escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(app: Any) -> str:
    """The Prometheus text exposition of ``/metrics``."""
    snap = app.monitor.snapshot()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[dict, Any]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")

    app_label = {"app": app.conf.id}

    def per(key: str, label: str) -> list[tuple[dict, Any]]:
        return [({**app_label, label: k}, v) for k, v in sorted(snap.get(key, {}).items())]

    family(
        "sabot_faust_events_in_total",
        "counter",
        "Events read, per topic.",
        per("events_in", "topic"),
    )
    family(
        "sabot_faust_events_out_total",
        "counter",
        "Messages sent, per topic.",
        per("events_out", "topic"),
    )
    agent_samples: dict[str, list[tuple[dict, Any]]] = {
        "agent_events": [],
        "agent_crashes": [],
        "agent_restarts": [],
        "circuit_open": [],
    }
    for name, agent in sorted(app.agents.items()):
        for key, samples in agent_samples.items():
            value = _per_agent(snap, key, agent, name, 0)
            samples.append(({**app_label, "agent": name}, int(value)))
    family(
        "sabot_faust_agent_events_total",
        "counter",
        "Events processed, per agent.",
        agent_samples["agent_events"],
    )
    family(
        "sabot_faust_agent_crashes_total",
        "counter",
        "Agent crashes, per agent.",
        agent_samples["agent_crashes"],
    )
    family(
        "sabot_faust_agent_restarts_total",
        "counter",
        "Agent restarts, per agent.",
        agent_samples["agent_restarts"],
    )
    family(
        "sabot_faust_agent_circuit_open",
        "gauge",
        "1 while an agent's circuit breaker is open.",
        agent_samples["circuit_open"],
    )
    for key in ("commits", "batches_in", "messages_sent"):
        if key in snap:
            family(
                f"sabot_faust_{key}_total",
                "counter",
                f"The monitor's {key}.",
                [(app_label, snap[key])],
            )
    table_samples = []
    for t in app.tables.values():
        info = _table_info(t)
        if isinstance(info.get("keys"), int):
            table_samples.append(({**app_label, "table": info["name"]}, info["keys"]))
    family("sabot_faust_table_keys", "gauge", "Keys held, per table.", table_samples)
    timers = getattr(app, "_sabot_timer_service", None)
    timer_infos = timers.info() if timers is not None else []
    for key, help_text in (
        ("runs", "Timer runs."),
        ("errors", "Timer runs that raised."),
        ("overlaps", "Timer ticks skipped because a run overran."),
    ):
        family(
            f"sabot_faust_timer_{key}_total",
            "counter",
            help_text,
            [({**app_label, "timer": t["name"]}, t[key]) for t in timer_infos],
        )
    return "\n".join(lines) + "\n"


class _StatusView(View):
    async def get(self, request: Request) -> Response:
        return self.json(status(self.app))


class _MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.text(
            prometheus_text(self.app), content_type="text/plain; version=0.0.4; charset=utf-8"
        )


# -- the server ----------------------------------------------------------------------------


class WebServer:
    """The app's HTTP server (an app service, priority 40)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes: list[_Route] = []
        self.builtin = [
            _Route("/status", _StatusView, "status"),
            _Route("/metrics", _MetricsView, "metrics"),
        ]
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self.requests = 0
        self.bind_error: str | None = None
        self._connections: set[asyncio.Task] = set()

    def add_route(self, path: str, view: type[View], name: str | None = None) -> None:
        for r in self.routes:
            if r.path == path:
                raise ValueError(f"app.page: {path!r} is already routed to {r.name}")
        self.routes.append(_Route(path, view, name or view.__name__))

    @property
    def url(self) -> str:
        return f"http://{self.app.conf.web_host}:{self.port}"

    async def start(self) -> None:
        if not getattr(self.app.conf, "web_enabled", True):
            return
        host = self.app.conf.web_host
        port = int(self.app.conf.web_port)
        try:
            self.server = await asyncio.start_server(self._serve, host, port)
        except OSError as e:
            # The worker keeps processing without its web server: pages, /status
            # and /metrics are unavailable, which is logged loudly, not hidden.
            self.bind_error = f"cannot listen on {host}:{port}: {e.strerror or e}"
            log.error(
                "web server of app %s: %s; running without it (choose another "
                "port with --web-port or web_port=)",
                self.app.conf.id,
                self.bind_error,
            )
            return
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("web server of %s on http://%s:%d", self.app.conf.id, host, self.port)

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self.server.wait_closed()
        self.server = None

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in (*self.routes, *self.builtin):
            m = route.pattern.match(path)
            if m:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    async def handle(self, request: Request) -> Response:
        """Routes one request to its view and returns the response."""
        found = self.match(request.path)
        if found is None:
            return Response(
                json.dumps({"error": f"no page at {request.path}"}).encode(),
                status=404,
                content_type="application/json",
            )
        route, params = found
        request.match_info = params
        view = route.view(self.app, self)
        method = request.method.lower()
        if method == "head":
            method = "get"
        handler = getattr(view, method, None) if method in View.methods else None
        if handler is None:
            allowed = [m.upper() for m in View.methods if hasattr(view, m)]
            return Response(
                json.dumps({"error": f"{request.method} not allowed on {route.path}"}).encode(),
                status=405,
                content_type="application/json",
                headers={"Allow": ", ".join(allowed)},
            )
        try:
            result = handler(request, **params)
            if inspect.isawaitable(result):
                result = await result
        except HTTPError as e:
            return view.error(e.status, e.detail)
        except Exception as e:
            log.exception("page %s (%s %s) raised", route.name, request.method, request.path)
            return view.error(500, f"{type(e).__name__}: {e}")
        return _to_response(view, result)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader), IDLE_TIMEOUT_S)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except HTTPError as e:
                    await _write(
                        writer,
                        Response(
                            json.dumps({"error": e.detail}).encode(),
                            status=e.status,
                            content_type="application/json",
                        ),
                        keep_alive=False,
                        head=False,
                    )
                    return
                if request is None:
                    return
                self.requests += 1
                response = await self.handle(request)
                keep_alive = request.headers.get("connection", "").lower() != "close"
                await _write(writer, response, keep_alive=keep_alive, head=request.method == "HEAD")
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass


def _to_response(view: View, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(b"", status=204)
    if isinstance(result, (bytes, bytearray)):
        return view.bytes(bytes(result))
    if isinstance(result, str):
        return view.text(result)
    return view.json(result)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as e:
        raise HTTPError(431, "request headers too large") from e
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    if len(head) > MAX_HEADER_BYTES:
        raise HTTPError(431, "request headers too large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as e:
        raise HTTPError(400, f"bad request line {lines[0]!r}") from e
    if not version.startswith("HTTP/1."):
        raise HTTPError(505, f"unsupported protocol {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(400, f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    if version == "HTTP/1.0" and "connection" not in headers:
        headers["connection"] = "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HTTPError(411, "chunked request bodies are not supported; send Content-Length")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise HTTPError(400, f"bad Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise HTTPError(413, f"request body over {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), target, headers, body)


async def _write(
    writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool, head: bool
) -> None:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    headers = {
        **response.headers,
        "Content-Length": str(len(response.body)),
        "Connection": "keep-alive" if keep_alive else "close",
        "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        "Server": "sabot",
    }
    out = [f"HTTP/1.1 {response.status} {reason}"]
    out += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
    if not head and response.body:
        writer.write(response.body)
    await writer.drain()


# -- registration ------------------------------------------------------------------------------


def _web(app: Any) -> WebServer | None:
    return getattr(app, "_sabot_web_server", None)


def install(app: Any) -> WebServer:
    """The app's web server, created and added as a service (priority 40) on
    the first call. The worker calls this so ``/status`` and ``/metrics`` are
    served also by apps without pages; ``app.page`` calls it too."""
    server = _web(app)
    if server is None:
        server = WebServer(app)
        app._sabot_web_server = server
        app.add_service(server, priority=SERVICE_PRIORITY)
    return server


def page(
    app: Any, path: str, *, name: str | None = None, **_faust_options: Any
) -> Callable[[Any], Any]:
    """``@app.page(path)``: routes ``path`` to a function view ``async def
    f(web, request, **params)`` or a :class:`View` subclass."""
    _compile_path(path)  # fail at declaration on a bad path

    def decorate(target: Any) -> Any:
        if inspect.isclass(target) and issubclass(target, View):
            view = target
        else:
            view = View.from_handler(target)
        install(app).add_route(path, view, name or getattr(target, "__name__", None))
        pages = getattr(app, "pages", None)
        if isinstance(pages, list):
            pages.append((path, view))
        return target

    return decorate
