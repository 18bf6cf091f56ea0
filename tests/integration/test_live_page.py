"""The worker's live page (/ui) in a real headless browser: Debian's chromium driven by Selenium
through Debian's chromium-driver. A worker with an API token reads generated traffic; the page
asks for the token, draws its charts from /ui/data and looks a customer up. A screenshot is
saved as a test artifact (CLV_TEST_ARTIFACTS, default test-artifacts/ at the repository root).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration.harness import Expected, Worker, free_port, make_settings
from tests.integration.test_api import get, wait_for
from tests.integration.test_worker import generated, send

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
TOKEN = "page-token"


def browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        message = "Debian packages `chromium` and `chromium-driver` are not installed"
        if CI:
            pytest.fail(message + "; CI must install them (.ci/run does)")
        pytest.skip(message)
    return chromium, driver


@pytest.fixture
def browser():
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def worker_with_traffic(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    settings = replace(make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state"),
                       api_token=TOKEN, web_port=free_port(), population_publish_interval_s=1.0)
    worker = Worker(settings, tmp_path).start()
    events = generated(customers=80, limit=1500, seed=5)
    expected = Expected(settings, single_topic=True).feed(events)
    send(settings, events, single_topic=True)
    yield settings, expected
    worker.stop()


def js(driver, script: str):
    return driver.execute_script("return " + script)


def wait_in_browser(driver, what: str, script: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = js(driver, script)
        if value:
            return value
        time.sleep(0.2)  # polling interval of the condition
    raise AssertionError(f"{what}: not seen in {timeout:.0f} s (last {value!r})")


def test_live_page_draws_charts_and_looks_customers_up(worker_with_traffic, browser):
    settings, expected = worker_with_traffic
    port = settings.web_port
    # The worker has read everything and the page's data holds every chart's input (over HTTP first,
    # so a failure says whether the worker or the page is at fault).
    data = wait_for("page data with segments, Pareto curve, flow and history", lambda: (
        (lambda s, d: (s == 200 and d["customers"] == len(expected.states) and d["pareto"] is not None
                       and d["flow"] and len([h for h in d["history"] if h["segments"]]) >= 2, d))(
            *get(port, "/ui/data", token=TOKEN))), timeout=120)
    assert get(port, "/ui/data", token=None)[0] == 401, "the page's data is under the API token"
    assert get(port, "/ui/data", token="wrong")[0] == 401

    browser.get(f"http://127.0.0.1:{port}/ui")
    assert "clvstream" in browser.title
    # no CDN: every script the page loads comes from the worker itself
    sources = js(browser, "[...document.scripts].map(s => s.src).filter(Boolean)")
    assert sources and all(s.startswith(f"http://127.0.0.1:{port}/ui/assets/") for s in sources), sources
    assert js(browser, "typeof Chart") == "function", "the vendored Chart.js loaded"
    wait_in_browser(browser, "the token form (401 without a token)", "!document.getElementById('token-form').hidden")
    browser.find_element("id", "token").send_keys(TOKEN)
    browser.find_element("css selector", "#token-form button").click()
    wait_in_browser(browser, "a drawn update", "window.clvPage.updates > 0")

    charts = "window.clvPage.charts"
    segments = sorted(data["segments"])
    assert js(browser, f"{charts}.segmentsOverTime.data.datasets.length") == len(segments)
    assert wait_in_browser(browser, "points in the segments-over-time chart",
                           f"Math.min(...{charts}.segmentsOverTime.data.datasets.map(d => d.data.length)) >= 2")
    assert js(browser, f"{charts}.clv.data.labels.length") == len(segments)
    assert js(browser, f"{charts}.clv.data.datasets[0].data.every(v => typeof v === 'number')")
    pareto = js(browser, f"{charts}.pareto.data.datasets[0].data")
    assert len(pareto) == len(data["pareto"]["curve"]) and pareto[-1]["y"] == pytest.approx(1.0, abs=0.02)
    assert js(browser, f"{charts}.pareto.data.datasets[2].data[0].y") == data["pareto"]["top20_share"]
    assert "top 20 %" in browser.find_element("id", "pareto-note").text
    for name in ("churn", "nps", "ces"):
        assert js(browser, f"{charts}.{name}.data.labels.length") == len(segments), name
    assert js(browser, f"{charts}.lag.data.datasets[0].data.length") >= 1
    flow_text = browser.find_element("id", "flow").text
    assert "first assessment" in flow_text and "from \\ to" in flow_text

    # lookup: the customer with the most events; the page shows what /customers/<id> says
    customer = max(expected.states, key=lambda c: expected.states[c].sequence)
    status, doc = get(port, f"/customers/{customer}", token=TOKEN)
    assert status == 200
    browser.find_element("id", "customer-id").send_keys(customer)
    browser.find_element("css selector", "#lookup-form button").click()
    figures = wait_in_browser(browser, "the customer's figures", "document.getElementById('customer-figures')")
    text = figures.text
    assert customer in text and doc["segment"] in text and doc["reason"] in text
    for label in ("formula CLV", "predicted CLV", "potential CLV", "P(alive)", "expected next order"):
        assert label in text, label
    browser.find_element("id", "customer-id").clear()
    browser.find_element("id", "customer-id").send_keys("cust-nobody")
    browser.find_element("css selector", "#lookup-form button").click()
    wait_in_browser(browser, "the unknown-customer message",
                    "document.querySelector('#customer .error')?.textContent.includes('unknown customer')")
    browser.find_element("id", "customer-id").clear()
    browser.find_element("id", "customer-id").send_keys(customer)
    browser.find_element("css selector", "#lookup-form button").click()
    wait_in_browser(browser, "the customer's figures again", "document.getElementById('customer-figures')")

    artifacts = Path(os.environ.get("CLV_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "live-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
