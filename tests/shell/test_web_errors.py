"""Every error of the worker's web server is JSON, on the worker's own aiohttp application.

The application is the one a worker serves (``create_app`` + ``build_topology``: Faust's
routes, the API views, the middleware), served over loopback by aiohttp's test server; the
requests are written on a raw socket so nothing normalises the path or refuses a long URL on
the client side. No broker is needed: none of these requests reaches a table.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import Settings
from streams.topology import build_topology, create_app


@pytest.fixture(scope="module")
def worker_web_app(tmp_path_factory):
    """Port of the worker's aiohttp application, served on its own event loop (an aiohttp app binds to one)."""
    settings = replace(Settings(), data_dir=str(tmp_path_factory.mktemp("web") / "state"), api_token="")
    app = create_app(settings)
    build_topology(app, settings)
    app.web.init_server()  # what the worker's web service does at start: Faust's routes on the aiohttp app
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = TestServer(app.web.web_app, host="127.0.0.1")
    asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(timeout=30)
    yield server.port
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):  # Connection: close -> read to EOF
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def ask(port, *requests: bytes) -> list[tuple[int, dict, bytes]]:
    return [_raw(port, r) for r in requests]


def request(method: str, target: str, extra: str = "") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n".encode()


def assert_json_error(answer, status: int) -> dict:
    got, headers, body = answer
    assert got == status, (got, body[:300])
    assert headers["content-type"].startswith("application/json"), (headers, body[:300])
    doc = json.loads(body)
    assert isinstance(doc["error"], str) and doc["error"], doc
    return doc


@pytest.mark.parametrize("target, status", [("/customers/", 404), ("/customers/a/b", 404), ("/nope", 404),
                                            ("/customers/../..", 404), ("/customers/%2e%2e/x", 404),
                                            ("/customers/..", 400)])  # ".." as an id: malformed
def test_no_route_or_a_path_with_dots_is_a_json_error(worker_web_app, target, status):
    doc = assert_json_error(ask(worker_web_app, request("GET", target))[0], status)
    if status == 404:
        assert doc == {"error": "no such resource"}


@pytest.mark.parametrize("method, target", [("POST", "/customers/cust-1"), ("POST", "/metrics"),
                                            ("PUT", "/health"), ("DELETE", "/segments")])
def test_wrong_method_is_a_json_405_that_names_the_allowed_ones(worker_web_app, method, target):
    answer = ask(worker_web_app, request(method, target))[0]
    assert assert_json_error(answer, 405) == {"error": "method not allowed"}
    assert "GET" in answer[1]["allow"]


def test_a_9000_byte_url_is_a_json_414_logged_in_one_line_without_traceback(worker_web_app, caplog):
    secret = "cust-" + "7" * 9000  # a path can carry a customer id: it must not reach the log
    with caplog.at_level(logging.DEBUG):
        answers = ask(worker_web_app, request("GET", f"/customers/{secret}"),
                      request("GET", "/health", extra=f"X-Big: {'y' * 9000}\r\n"),
                      b"\x16\x03\x01 not http at all\r\n\r\n")
    assert_json_error(answers[0], 414)
    assert_json_error(answers[1], 431)
    assert_json_error(answers[2], 400)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage()[:200] for r in caplog.records if r.exc_info]
    assert not [r for r in caplog.records if "7777" in r.getMessage()]
    assert any("414" in r.getMessage() for r in caplog.records)


def test_api_errors_keep_their_context_and_successes_are_untouched(worker_web_app):
    malformed, health, metrics = ask(worker_web_app, request("GET", "/customers/a%20b"), request("GET", "/health"),
                                     request("GET", "/metrics"))
    assert "malformed customer id" in assert_json_error(malformed, 400)["error"]
    assert health[0] == 200 and json.loads(health[2]) == {"status": "ok"}
    assert metrics[0] == 200 and metrics[1]["content-type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(metrics[2].decode())}
    assert "clvstream_events" in families
    assert "_created" not in metrics[2].decode()  # item: no creation-time series in the worker's /metrics
