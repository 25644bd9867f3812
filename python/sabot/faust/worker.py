"""The worker and the app CLI: ``sabot -A module:app COMMAND``.

Commands: ``worker [-l info] [--web-port N]`` runs the app until Ctrl-C or
SIGTERM, then shuts down gracefully (agents stop fetching, finish the records
they hold, the producer flushes, offsets of processed records are committed);
``agents`` and ``tables`` list them; ``send TOPIC VALUE [--key K]`` produces one
record; ``status`` shows the app's agents, topics and, for Kafka, committed
offsets and lag of the app's consumer group. ``app.main()`` runs the same CLI
(``python myapp.py worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("sabot.faust.worker")


def load_app(spec: str) -> Any:
    """``module:attr`` (or ``module``, attribute ``app``) -> the App."""
    from sabot.faust.app import App

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    mod_name, _, attr = spec.partition(":")
    module = importlib.import_module(mod_name)
    obj = getattr(module, attr or "app", None)
    if obj is None:
        raise SystemExit(f"sabot: module {mod_name!r} has no attribute {attr or 'app'!r}")
    if callable(obj) and not isinstance(obj, App):
        obj = obj()
    if not isinstance(obj, App):
        raise SystemExit(f"sabot: {spec!r} is not a sabot.faust App")
    return obj


# -- memory-lean defaults of a worker (docs/design/faust_memory.md) -------------------

LEAN_ENV = {
    # Arrow's allocations go to glibc malloc instead of mimalloc's own arenas,
    # which keep freed pages mapped: -5.5 MiB peak RSS on the Faust benchmark's
    # per-record worker (80 -> 74 MiB), same throughput. Read when Arrow first
    # allocates.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}
MALLOC_ARENA_MAX = 2
"""glibc malloc arenas of a worker (default: 8 per core): librdkafka's and the
engine's threads each get an arena of their own otherwise, every one keeping
freed memory; 2 measured -2 MiB peak RSS on the Faust benchmark's per-record
worker at the same throughput (both defaults together: 81 -> 74 MiB)."""


def lean_memory_defaults() -> None:
    """Applies the worker's memory defaults unless the user chose otherwise:
    each variable of :data:`LEAN_ENV` only when not set in the environment, and
    glibc's arena cap (``mallopt(M_ARENA_MAX)``) only when ``MALLOC_ARENA_MAX``
    is not set (glibc applied that itself). ``SABOT_FAUST_LEAN_MEMORY=0``
    turns all of it off."""
    if os.environ.get("SABOT_FAUST_LEAN_MEMORY", "1") == "0":
        return
    for k, v in LEAN_ENV.items():
        os.environ.setdefault(k, v)
    if "MALLOC_ARENA_MAX" not in os.environ:
        from sabot import _sabot

        _sabot.malloc_arena_max(MALLOC_ARENA_MAX)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _install_web(app: Any) -> None:
    """Starts the worker's HTTP server (sabot.faust.web) when that module offers it."""
    try:
        from sabot.faust import web
    except ImportError:
        return
    for hook in ("install", "attach", "install_web"):
        fn = getattr(web, hook, None)
        if fn is not None:
            fn(app)
            return


async def run_worker(app: Any, *, ready: Any = None) -> int:
    """Runs ``app`` until SIGINT/SIGTERM; returns the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await app.start()
    names = ", ".join(a.short_name for a in app.agents.values()) or "-"
    print(
        f"[sabot] worker ready: app={app.conf.id} broker={app.conf.broker} agents={names}",
        flush=True,
    )
    if ready is not None:
        ready()
    try:
        await stop.wait()
        log.info("shutting down: agents finish the records they hold, then commit")
    finally:
        await app.stop()
        await app.close()
    snap = app.monitor.snapshot()
    print(
        f"[sabot] worker stopped: events in {sum(snap['agent_events'].values())}, "
        f"commits {snap['commits']}, crashes {sum(snap['agent_crashes'].values())}",
        flush=True,
    )
    return 0


def _cmd_worker(app: Any, args: argparse.Namespace) -> int:
    _setup_logging(args.loglevel)
    if args.web_port is not None:
        app.conf.web_port = args.web_port
    if args.web_host is not None:
        app.conf.web_host = args.web_host
    _install_web(app)
    return asyncio.run(run_worker(app))


def _cmd_agents(app: Any, args: argparse.Namespace) -> int:
    rows = [
        (a.short_name, str(a.channel), str(a.concurrency), a.info()["help"])
        for a in app.agents.values()
    ]
    _print_table(("name", "topic", "concurrency", "help"), rows, args.json)
    return 0


def _cmd_tables(app: Any, args: argparse.Namespace) -> int:
    rows = []
    for name, t in app.tables.items():
        changelog = getattr(t, "changelog_topic_name", None) or getattr(t, "changelog_topic", None)
        rows.append(
            (
                name,
                type(t).__name__,
                str(getattr(changelog, "name", changelog) or "-"),
                str(getattr(t, "help", "") or ""),
            )
        )
    _print_table(("name", "kind", "changelog", "help"), rows, args.json)
    return 0


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cmd_send(app: Any, args: argparse.Namespace) -> int:
    async def go() -> Any:
        name = args.topic
        agent = next((a for a in app.agents.values() if name in (a.short_name, a.name)), None)
        target = agent.channel if agent is not None else (app.topics.get(name) or app.topic(name))
        value = _parse_value(args.value)
        if getattr(target, "value_serializer", None) == "raw" and not isinstance(value, str):
            value = args.value
        fut = await target.send(key=args.key, value=value, partition=args.partition)
        md = await fut
        await app.close()
        return md

    md = asyncio.run(go())
    print(
        json.dumps(
            {
                "topic": md.topic,
                "partition": md.partition,
                "offset": md.offset,
                "timestamp": md.timestamp_ms,
            }
        )
    )
    return 0


def _cmd_status(app: Any, args: argparse.Namespace) -> int:
    info: dict[str, Any] = {
        "id": app.conf.id,
        "broker": app.conf.broker,
        "store": app.conf.store,
        "web_port": app.conf.web_port,
        "agents": [a.info() for a in app.agents.values()],
        "tables": sorted(app.tables),
    }
    if app.conf.broker.startswith("kafka://"):
        from sabot import kafka as sk

        transport = app.transport
        topics = {}
        for agent in app.agents.values():
            group = app._group_for(agent)
            for t in agent.channel.topics:
                try:
                    ends = transport.end_offsets(t)
                    committed = transport.committed(group, t)
                except Exception as exc:  # topic not created yet
                    topics[t] = {"error": str(exc)}
                    continue
                parts = []
                for p, end in enumerate(ends):
                    c = committed.get((t, p), -1001)
                    parts.append(
                        {
                            "partition": p,
                            "end": end,
                            "committed": c if c >= 0 else None,
                            "lag": end - max(c, 0),
                        }
                    )
                topics[t] = {"group": group, "partitions": parts}
        info["topics"] = topics
        info["broker_reachable"] = sk.broker_available(transport.bootstrap)
    print(json.dumps(info, indent=2, default=str))
    return 0


def _print_table(header: Sequence[str], rows: list[Sequence[str]], as_json: bool) -> None:
    if as_json:
        print(json.dumps([dict(zip(header, r, strict=True)) for r in rows]))
        return
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _parser(prog: str, with_app: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Faust-compatible app commands")
    if with_app:
        p.add_argument("-A", "--app", required=True, help="module:attribute of the App")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run the app's agents, tables, timers and web server")
    w.add_argument("-l", "--loglevel", default="warning")
    w.add_argument("--web-port", type=int, default=None)
    w.add_argument("--web-host", default=None)
    w.set_defaults(fn=_cmd_worker)
    a = sub.add_parser("agents", help="list the agents")
    a.add_argument("--json", action="store_true")
    a.set_defaults(fn=_cmd_agents)
    t = sub.add_parser("tables", help="list the tables")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=_cmd_tables)
    s = sub.add_parser("send", help="send one record to a topic or agent")
    s.add_argument("topic")
    s.add_argument("value")
    s.add_argument("--key", "-k", default=None)
    s.add_argument("--partition", "-p", type=int, default=None)
    s.set_defaults(fn=_cmd_send)
    st = sub.add_parser("status", help="the app's agents, topics, committed offsets and lag")
    st.set_defaults(fn=_cmd_status)
    return p


def main(argv: Sequence[str]) -> int:
    """``sabot -A module:app COMMAND ...``"""
    args = _parser("sabot", with_app=True).parse_args(list(argv))
    if args.command == "worker":
        lean_memory_defaults()  # before the app's module allocates anything
    app = load_app(args.app)
    return int(args.fn(app, args))


def main_for_app(app: Any, argv: Sequence[str]) -> int:
    """``app.main()``: the same commands for a given app."""
    args = _parser(sys.argv[0], with_app=False).parse_args(list(argv))
    if args.command == "worker":
        lean_memory_defaults()
    return int(args.fn(app, args))


class Worker:
    """``faust.Worker(app, loglevel="info").execute_from_commandline()``: runs
    the app in this process until SIGINT/SIGTERM (as the ``worker`` command)."""

    def __init__(
        self,
        app: Any,
        *services: Any,
        loglevel: str = "warning",
        web_port: int | None = None,
        **kw: Any,
    ) -> None:
        self.app = app
        self.loglevel = loglevel
        self.web_port = web_port
        for svc in services:
            app.add_service(svc)

    def execute_from_commandline(self) -> int:
        lean_memory_defaults()
        _setup_logging(str(self.loglevel))
        if self.web_port is not None:
            self.app.conf.web_port = self.web_port
        _install_web(self.app)
        return asyncio.run(run_worker(self.app))
