"""The query API on two workers of one group (Apache Kafka): a customer lookup sent to the worker
that does not own the customer's partition is forwarded (``table_route``) and answers
exactly what the pure pipeline says; errors are clear JSON; the token travels with the
forwarded request.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from streams.kafka.partitioning import partition_for
from streams.lookup import customer_document
from tests.integration.harness import (Expected, Worker, changelog_states, free_port, make_settings,
                                       stable_assignment)
from tests.integration.test_worker import generated, send

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


def get(port: int, path: str, token: str | None = TOKEN, timeout: float = 10.0, method: str = "GET"):
    """(status, JSON body) of GET (or ``method``) http://127.0.0.1:port/path."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None


def wait_for(what: str, check, timeout: float = 90.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: last {last!r}")


@pytest.fixture
def two_workers(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    base = replace(make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state-1"),
                   api_token=TOKEN)
    workers = []
    for n in (1, 2):
        settings = replace(base, data_dir=str(tmp_path / f"state-{n}"), web_port=free_port())
        (tmp_path / f"w{n}").mkdir()
        workers.append(Worker(settings, tmp_path / f"w{n}"))
    for worker in workers:
        worker.start()
    yield base, workers
    for worker in workers:
        worker.stop()


def test_lookup_on_the_other_worker_is_routed_to_the_owner(two_workers):
    settings, workers = two_workers
    events = generated(customers=40, limit=600, seed=21)
    expected = Expected(settings, single_topic=True).feed(events)
    want = expected.states
    owners = stable_assignment(workers, settings.partitions)
    assert len(set(owners.values())) == 2, "each worker must own partitions for this test to mean anything"
    send(settings, events, single_topic=True)
    changelog_states(settings, lambda s: all(c in s and s[c].watermark_ms == w.watermark_ms for c, w in want.items()))
    owners = stable_assignment(workers, settings.partitions)  # unchanged unless a worker fell out

    cfg = settings.engine_config()
    forwarded = 0
    for customer, state in sorted(want.items()):
        owner = owners[partition_for(customer.encode(), settings.partitions)]
        other = next(w for w in workers if w is not owner)
        wanted = json.loads(json.dumps(customer_document(state, cfg)))
        for worker in (other, owner):
            body = wait_for(f"{customer} on port {worker.settings.web_port}",
                            lambda: (lambda r: (r == (200, wanted), r))(get(worker.settings.web_port,
                                                                               f"/customers/{customer}")),
                            timeout=30)
            assert body == (200, wanted)
        forwarded += 1
        assert wanted["segment"] and wanted["reason"] and wanted["service_level"]
        assert set(wanted["clv"]) >= {"historical_revenue", "historical_margin", "formula", "predicted",
                                      "potential", "p_alive"}
    assert forwarded == len(want) > 0

    # Errors, on both workers (an unknown customer may be owned by either: the 404 comes back forwarded).
    for worker in workers:
        port = worker.settings.web_port
        for unknown in ("nobody-1", "nobody-2", "nobody-3", "nobody-4"):
            status, body = get(port, f"/customers/{unknown}")
            assert (status, body) == (404, {"error": "unknown customer", "customer_id": unknown})
        for malformed in ("a%20b", "x" * 200, "%3Cscript%3E"):  # "a b", too long, "<script>"
            status, body = get(port, f"/customers/{malformed}")
            assert status == 400 and "malformed customer id" in body["error"], (malformed, status, body)
        customer = next(iter(want))
        assert get(port, f"/customers/{customer}", token=None)[0] == 401
        status, body = get(port, f"/customers/{customer}", token="wrong")
        assert status == 401 and "invalid bearer token" in body["error"]
        assert get(port, "/segments", token=None)[0] == 401
        assert get(port, "/health", token=None) == (200, {"status": "ok"})
        # Not the API's own errors: no route, wrong method, a URL the HTTP parser refuses (web_errors).
        assert get(port, "/customers/") == (404, {"error": "no such resource"})
        assert get(port, "/customers/a/b") == (404, {"error": "no such resource"})
        assert get(port, "/customers/" + "x" * 9000) == (414, {"error": "URL too long"})
        assert get(port, f"/customers/{customer}", method="POST") == (405, {"error": "method not allowed"})
    for worker in workers:
        assert worker.proc.poll() is None, worker.log()[-3000:]
        log = worker.log()  # the refused URL: one line, no aiohttp traceback, no path
        assert "Error handling request" not in log and "http_exceptions" not in log and "x" * 100 not in log, log[-3000:]
        assert "refused a malformed HTTP request: 414" in log
