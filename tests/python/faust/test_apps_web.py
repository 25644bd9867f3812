"""The worker's HTTP server: app.page views (function and class), path
parameters, errors, keep-alive, /status and /metrics, over real sockets."""

from __future__ import annotations

import asyncio
import http.client
import json

import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot.faust.web import HTTPError, View


def fetch(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


async def afetch(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    return await asyncio.to_thread(fetch, port, method, path, body, headers)


def make_app() -> faust.App:
    app = faust.App(unique("web"), broker="memory://", web_port=0)
    counts: dict[str, int] = {}
    topic = app.topic("clicks", key_type=str, value_type=str, value_serializer="raw", partitions=2)

    @app.agent(topic)
    async def count_clicks(stream):
        async for key, _ in stream.items():
            counts[key] = counts.get(key, 0) + 1

    @app.page("/count/{user}/")
    async def get_count(web, request, user):
        return web.json({"user": user, "count": counts.get(user, 0), "q": request.query.get("q")})

    @app.page("/echo/")
    class Echo(View):
        async def post(self, request):
            data = await request.json()
            return self.json({"got": data, "app": self.app.conf.id}, status=201)

    @app.page("/item/{id:[0-9]+}")
    async def item(web, request, id):
        if id == "0":
            raise HTTPError(404, "no item 0")
        if id == "13":
            raise RuntimeError("unlucky")
        return web.text(f"item {id}")

    @app.timer(interval=0.01)
    async def tick():
        pass

    app.test_topic = topic  # type: ignore[attr-defined]
    app.test_counts = counts  # type: ignore[attr-defined]
    return app


def test_pages_answer_over_http() -> None:
    async def main() -> None:
        app = make_app()
        await app.start()
        port = app._sabot_web_server.port
        assert port and port != 0
        for user in ("ann", "ann", "bob"):
            await app.test_topic.send(key=user, value="click")
        await wait_until(lambda: sum(app.test_counts.values()) == 3, what="3 clicks")

        status, headers, body = await afetch(port, "GET", "/count/ann/?q=x%20y")
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"user": "ann", "count": 2, "q": "x y"}
        # The trailing slash is optional.
        status, _, body = await afetch(port, "GET", "/count/bob")
        assert json.loads(body)["count"] == 1

        status, _, body = await afetch(
            port,
            "POST",
            "/echo/",
            json.dumps({"a": [1, 2]}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 201 and json.loads(body) == {"got": {"a": [1, 2]}, "app": app.conf.id}
        status, headers, _ = await afetch(port, "GET", "/echo/")
        assert status == 405 and headers["allow"] == "POST"
        status, _, body = await afetch(port, "POST", "/echo/", b"{not json")
        assert status == 400 and "not JSON" in json.loads(body)["error"]

        status, headers, body = await afetch(port, "GET", "/item/7")
        assert (status, body) == (200, b"item 7") and headers["content-type"] == "text/plain"
        assert (await afetch(port, "GET", "/item/x7"))[0] == 404  # the regex does not match
        status, _, body = await afetch(port, "GET", "/item/0")
        assert status == 404 and json.loads(body) == {"error": "no item 0"}
        status, _, body = await afetch(port, "GET", "/item/13")
        assert status == 500 and json.loads(body) == {"error": "RuntimeError: unlucky"}
        status, _, body = await afetch(port, "GET", "/nowhere")
        assert status == 404 and "/nowhere" in json.loads(body)["error"]
        await app.stop()
        # Stopped: the port no longer answers.
        try:
            await afetch(port, "GET", "/status")
            raise AssertionError("server still answering after stop")
        except ConnectionError:
            pass

    run(main())


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def main() -> None:
        app = make_app()
        await app.start()
        port = app._sabot_web_server.port

        def three_on_one() -> list[int]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            out = []
            for path in ("/count/a/", "/status", "/count/b/"):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                out.append(resp.status)
            conn.close()
            return out

        assert await asyncio.to_thread(three_on_one) == [200, 200, 200]
        assert app._sabot_web_server.requests == 3
        await app.stop()

    run(main())


def test_status_and_metrics_report_agents_timers_and_counters() -> None:
    async def main() -> None:
        app = make_app()
        await app.start()
        port = app._sabot_web_server.port
        for i in range(5):
            await app.test_topic.send(key=f"u{i % 2}", value="click")
        await wait_until(lambda: sum(app.test_counts.values()) == 5, what="5 clicks")
        await wait_until(lambda: app._sabot_timer_service.timers[0].runs >= 1, what="a tick")

        status, _, body = await afetch(port, "GET", "/status")
        assert status == 200
        st = json.loads(body)
        assert st["app"] == app.conf.id and st["started"] is True
        (agent,) = st["agents"]
        assert agent["name"].endswith("count_clicks")
        assert agent["events"] == 5 and agent["crashes"] == 0
        assert st["monitor"]["events_in"] == {"clicks": 5}
        assert [t["name"].rsplit(".", 1)[-1] for t in st["timers"]] == ["tick"]
        assert st["pages"] == ["/count/{user}/", "/echo/", "/item/{id:[0-9]+}"]
        assert "clicks" in st["topics"]

        status, headers, body = await afetch(port, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        app_id = app.conf.id
        assert samples[f'sabot_faust_events_in_total{{app="{app_id}",topic="clicks"}}'] == 5
        agent_name = agent["name"]
        assert (
            samples[f'sabot_faust_agent_events_total{{app="{app_id}",agent="{agent_name}"}}'] == 5
        )
        assert (
            samples[f'sabot_faust_agent_crashes_total{{app="{app_id}",agent="{agent_name}"}}'] == 0
        )
        timer_runs = [v for k, v in samples.items() if k.startswith("sabot_faust_timer_runs_total")]
        assert len(timer_runs) == 1 and timer_runs[0] >= 1
        # HEAD: headers only.
        status, headers, body = await afetch(port, "HEAD", "/status")
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
        await app.stop()

    run(main())


def test_bad_requests_get_http_errors() -> None:
    async def main() -> None:
        app = make_app()
        await app.start()
        port = app._sabot_web_server.port

        async def raw(data: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            await writer.drain()
            out = await reader.read()
            writer.close()
            return out

        assert (await raw(b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        chunked = b"POST /echo/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert (await raw(chunked)).startswith(b"HTTP/1.1 411 ")
        huge = b"POST /echo/ HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"
        assert (await raw(huge)).startswith(b"HTTP/1.1 413 ")
        ok = await raw(b"GET /status HTTP/1.0\r\n\r\n")  # 1.0: closes after the answer
        assert ok.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in ok
        await app.stop()

    run(main())


def test_duplicate_route_and_disabled_web() -> None:
    app = faust.App(unique("web"), broker="memory://", web_port=0)

    @app.page("/a/")
    async def a(web, request):
        return {"a": 1}

    try:

        @app.page("/a/")
        async def a2(web, request):
            return {}

        raise AssertionError("duplicate route accepted")
    except ValueError as e:
        assert "already routed" in str(e)

    async def main() -> None:
        off = faust.App(unique("web"), broker="memory://", web_port=0, web_enabled=False)

        @off.page("/x/")
        async def x(web, request):
            return {}

        await off.start()
        assert off._sabot_web_server.port is None
        await off.stop()

    run(main())


def test_a_taken_port_is_logged_and_the_app_keeps_running(caplog) -> None:
    async def main() -> None:
        first = make_app()
        await first.start()
        taken = first._sabot_web_server.port
        second = faust.App(unique("web"), broker="memory://", web_port=taken)
        seen = []
        topic = second.topic("t", value_type=str, value_serializer="raw")

        @second.agent(topic)
        async def consume(stream):
            async for v in stream:
                seen.append(v)

        @second.page("/x/")
        async def x(web, request):
            return {}

        with caplog.at_level("ERROR", logger="sabot.faust.web"):
            await second.start()
        server = second._sabot_web_server
        assert server.port is None and f"{taken}" in server.bind_error
        assert any("running without it" in r.message for r in caplog.records)
        await topic.send(value="still processing")
        await wait_until(lambda: len(seen) == 1, what="the agent")
        await second.stop()
        await first.stop()

    run(main())
