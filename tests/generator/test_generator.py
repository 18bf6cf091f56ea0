from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.generator import (
    MALFORMED_CASES,
    MAX_PAYLOAD_BYTES,
    MONEY_FIELDS,
    REJECTION_CLASSES,
    EventGenerator,
    GeneratorConfig,
    TrueParameters,
    make_malformed,
    malformed_payload,
)

ROLE = {"order": "orders", "refund": "orders", "interaction": "interactions", "customer": "customers"}
REPO = Path(__file__).resolve().parents[2]


def cents(x) -> int:
    c = round(x * 100)
    assert abs(x * 100 - c) < 1e-6, f"{x!r} has more than 2 decimals"
    return c


def time_ms(s: str) -> int:
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def _reject_constant(name):
    raise ValueError(f"not JSON: {name}")


def classify(payload: bytes, validators, accepted=("EUR",), check_size=True) -> str:
    """Reference ingest classifier: the dead-letter reason, or "ok"."""
    if check_size and len(payload) > MAX_PAYLOAD_BYTES:
        return "too_large"
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return "malformed_json"
    if not isinstance(obj, dict) or "type" not in obj or "schema_version" not in obj:
        return "schema_invalid"
    if obj["type"] not in validators:
        return "unknown_type"
    v = obj["schema_version"]
    if type(v) is not int or v != 1:
        return "unsupported_schema_version"
    errors = list(validators[obj["type"]].iter_errors(obj))
    if errors:
        bounds = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        return "invalid_value" if all(e.validator in bounds for e in errors) else "schema_invalid"
    if "currency" in obj and obj["currency"] not in accepted:
        return "unsupported_currency"
    if not 2000 <= datetime.fromisoformat(obj["event_time"].replace("Z", "+00:00")).year <= 2100:
        return "event_time_out_of_range"
    money = [obj[f] for f in MONEY_FIELDS[obj["type"]] if f in obj]
    money += [it["unit_price"] for it in obj.get("items", ())]
    if any(Decimal(repr(m)).as_tuple().exponent < -2 for m in money):
        return "invalid_value"
    return "ok"


# ------------------------------------------------------------ validity


def test_every_event_validates_against_its_schema(run_2000, validators):
    seen_ids = set()
    kinds = Counter()
    for ev in run_2000.events:
        v = ev.value
        assert isinstance(v, dict) and not ev.duplicate and ev.expected_rejection is None
        errors = list(validators[ev.kind].iter_errors(v))
        assert not errors, (v, errors[0].message)
        assert v["type"] == ev.kind and ev.topic_role == ROLE[ev.kind]
        assert ev.key == v["customer_id"]
        assert time_ms(v["event_time"]) == ev.event_time_ms
        json.dumps(v, allow_nan=False)
        assert v["event_id"] not in seen_ids
        seen_ids.add(v["event_id"])
        kinds[(v["type"], v.get("kind"))] += 1
        if "currency" in v:
            assert v["currency"] == "EUR"
        for f in MONEY_FIELDS[v["type"]]:
            if f in v:
                cents(v[f])
        if ev.kind == "order":
            amount = cents(v["amount"])
            assert amount >= 100
            assert 1 <= len(v["items"]) <= 4
            assert sum(cents(it["unit_price"]) * it["quantity"] for it in v["items"]) == amount
            assert int(0.45 * amount) - 1 <= cents(v["cost_of_goods"]) <= 0.70 * amount
            assert cents(v.get("logistics_cost", 0)) <= 800
    expected = {
        ("customer", "signup"), ("customer", "update"), ("order", None), ("refund", None),
        ("interaction", "service_contact"), ("interaction", "complaint"), ("interaction", "nps"),
        ("interaction", "ces"), ("interaction", "referral"), ("interaction", "review"),
    }  # fmt: skip
    assert expected <= set(kinds), kinds
    # a sample through the reference ingest classifier too
    for ev in run_2000.events[:1500]:
        assert classify(json.dumps(ev.value).encode(), validators) == "ok"


def test_signups_channels_costs_and_attributes(run_2000):
    signups = [e.value for e in run_2000.events if e.kind == "customer" and e.value["kind"] == "signup"]
    assert len(signups) == len(run_2000.report.customers)
    by_channel = defaultdict(list)
    for s in signups:
        by_channel[s["acquisition_channel"]].append(s["acquisition_cost"])
    assert set(by_channel) >= {"organic", "search", "social", "affiliate", "email", "offline", "sales", "referral"}
    assert max(by_channel["organic"]) == 0
    assert statistics.mean(by_channel["sales"]) > 5 * statistics.mean(by_channel["search"]) > 0
    with_attrs = sum("attributes" in s for s in signups) / len(signups)
    assert 0.02 < with_attrs < 0.15


def test_referrals_lead_to_referral_signups(run_2000):
    referred = {}
    for ev in run_2000.events:
        v = ev.value
        if v["type"] == "interaction" and v["kind"] == "referral":
            referred[v["referred_customer_id"]] = (v["customer_id"], ev.event_time_ms)
        elif v["type"] == "customer" and v["kind"] == "signup" and v["acquisition_channel"] == "referral":
            referrer, t = referred[v["customer_id"]]  # referral came first
            assert ev.event_time_ms > t
            assert run_2000.generator.truth(v["customer_id"]).referred_by == referrer
    assert len(referred) >= 10


# ------------------------------------------------------- determinism, order


def test_same_seed_same_stream_different_seed_different(run_factory):
    def stream(seed, limit=4000):
        return [tuple(e) for e in run_factory(limit=limit, seed=seed, customers=300, arrival_per_day=3).events]

    a, b, c = stream(5), stream(5), stream(6)
    assert a == b
    assert a != c
    # resuming yields the same stream as one call
    gen = EventGenerator(GeneratorConfig(seed=5, customers=300, arrival_per_day=3))
    resumed = list(gen.events(limit=1234)) + list(gen.events(limit=4000 - 1234))
    assert [tuple(e) for e in resumed] == a


def test_event_times_non_decreasing_without_disorder(run_2000):
    times = [e.event_time_ms for e in run_2000.events]
    assert times == sorted(times)
    assert times[0] >= run_2000.config.start_ms
    assert times[-1] <= run_2000.config.start_ms + 180 * 86_400_000


def test_duplicates_keep_event_id(run_factory):
    run = run_factory(until_days=60, seed=3, customers=1000, share_duplicates=0.05, max_duplicate_delay_seconds=120)
    first = {}
    dups = 0
    for i, ev in enumerate(run.events):
        eid = ev.value["event_id"]
        if ev.duplicate:
            dups += 1
            j, orig = first[eid]  # original emitted before
            assert j < i and ev.value == orig.value and ev.value is not orig.value
            assert (ev.kind, ev.key, ev.event_time_ms, ev.topic_role) == (orig.kind, orig.key, orig.event_time_ms, orig.topic_role)
        else:
            assert eid not in first
            first[eid] = (i, ev)
    assert 0.03 < dups / len(first) < 0.07
    assert run.report.duplicates == dups
    # duplicates arrive within max_duplicate_delay_seconds
    running_max = 0
    for ev in run.events:
        assert ev.event_time_ms >= running_max - 120_000
        running_max = max(running_max, ev.event_time_ms)


def test_out_of_order_bounded_and_same_events(run_factory):
    run = run_factory(until_days=60, seed=3, customers=1000, share_out_of_order=0.2, max_disorder_seconds=600)
    running_max = 0
    inversions = 0
    for ev in run.events:
        if ev.event_time_ms < running_max:
            inversions += 1
            assert running_max - ev.event_time_ms <= 600_000
        running_max = max(running_max, ev.event_time_ms)
    assert inversions > 50
    assert run.report.delayed > 0.15 * len(run.events)
    clean = run_factory(until_days=60, seed=3, customers=1000)
    assert sorted(e.value["event_id"] for e in run.events) == sorted(e.value["event_id"] for e in clean.events)


def test_noise_leaves_valid_events_unchanged(run_factory, validators):
    noisy = run_factory(
        until_days=45, seed=9, customers=800, share_duplicates=0.03, share_out_of_order=0.1,
        max_disorder_seconds=300, share_malformed=0.02,
    )  # fmt: skip
    clean = run_factory(until_days=45, seed=9, customers=800)
    valid = {e.value["event_id"]: e.value for e in noisy.events if not e.duplicate and e.kind != "malformed"}
    assert valid == {e.value["event_id"]: e.value for e in clean.events}
    mal = [e for e in noisy.events if e.kind == "malformed"]
    assert 0.01 * len(valid) < len(mal) < 0.03 * len(valid)
    for e in mal:
        assert isinstance(e.value, bytes) and e.topic_role in ROLE.values()
        assert classify(e.value, validators) == e.expected_rejection


# ---------------------------------------------------------------- refunds


def test_refunds_refer_to_earlier_order_and_never_exceed_it(run_2000):
    orders = {}
    refunded = Counter()
    n_refunds = 0
    for ev in run_2000.events:
        v = ev.value
        if ev.kind == "order":
            orders[v["order_id"]] = (v["customer_id"], cents(v["amount"]), ev.event_time_ms)
        elif ev.kind == "refund":
            n_refunds += 1
            cust, amount, t = orders[v["order_id"]]
            assert cust == v["customer_id"] and ev.event_time_ms > t
            refunded[v["order_id"]] += cents(v["amount"])
            assert 0 < refunded[v["order_id"]] <= amount
            assert cents(v.get("restocked_cost", 0)) <= amount
    assert 0.025 < n_refunds / len(orders) < 0.06
    assert any(refunded[o] == orders[o][1] for o in refunded)  # some full
    assert any(refunded[o] < orders[o][1] for o in refunded)  # some partial


# ------------------------------------------------------- population truths


def test_pareto_revenue_concentration(run_5000):
    revenue = sorted((c.revenue_cents for c in run_5000.report.customers.values()), reverse=True)
    assert len(revenue) >= 5000  # the cohort plus the customers it referred
    top = sum(revenue[: len(revenue) // 5]) / sum(revenue)
    assert 0.60 <= top <= 0.80, top


def test_purchase_heterogeneity_and_true_parameters(run_5000):
    counts = Counter(e.key for e in run_5000.events if e.kind == "order")
    per_customer = [counts.get(cid, 0) for cid in run_5000.report.customers]
    mean = statistics.mean(per_customer)
    cv = statistics.pstdev(per_customer) / mean
    assert cv > 1.8 * (1 / mean**0.5), (cv, mean)  # Poisson: CV = 1/sqrt(mean)
    tp: TrueParameters = run_5000.config.params
    truths = list(run_5000.report.customers.values())
    assert statistics.mean(t.lam for t in truths) == pytest.approx(tp.r / tp.alpha, rel=0.1)
    assert statistics.mean(t.p for t in truths) == pytest.approx(tp.a / (tp.a + tp.b), rel=0.1)
    assert statistics.median(t.lam for t in truths) * 365 == pytest.approx(2.8, rel=0.2)
    aov = run_5000.report.revenue_cents / run_5000.report.orders / 100
    assert aov == pytest.approx(tp.p * tp.gamma / (tp.q - 1), rel=0.15)
    # dropped-out customers order no more; their last order is the dropout
    for t in truths:
        if not t.alive:
            assert t.last_order_ms == t.churned_at_ms and t.orders >= 2
    assert 0.15 < sum(not t.alive for t in truths) / len(truths) < 0.5


def test_satisfaction_signals_follow_the_trait(run_5000):
    truth = run_5000.report.customers
    nps_d, nps_s = [], []
    complaints = Counter()
    for ev in run_5000.events:
        v = ev.value
        if ev.kind == "interaction":
            if v["kind"] == "nps":
                nps_d.append(truth[ev.key].dissatisfaction)
                nps_s.append(v["nps_score"])
            elif v["kind"] == "complaint":
                complaints[ev.key] += 1
    assert statistics.correlation(nps_d, nps_s) < -0.4
    ranked = sorted(truth.values(), key=lambda t: t.dissatisfaction)
    low, high = ranked[: len(ranked) // 2], ranked[len(ranked) // 2 :]

    def rate(group):
        return sum(complaints[t.customer_id] for t in group) / max(1, sum(t.orders for t in group))

    assert rate(high) > 3 * rate(low)


def test_truth_totals_match_a_recount(run_2000, run_factory):
    noisy = run_factory(
        limit=9000, seed=4, customers=1500, share_duplicates=0.05, share_out_of_order=0.2,
        max_disorder_seconds=3600, share_malformed=0.01,
    )  # fmt: skip
    for run in (run_2000, noisy):
        seen = set()
        orders, revenue, refunds, interactions = Counter(), Counter(), Counter(), Counter()
        for ev in run.events:
            if ev.kind == "malformed":
                continue
            eid = ev.value["event_id"]
            if eid in seen:
                continue
            seen.add(eid)
            if ev.kind == "order":
                orders[ev.key] += 1
                revenue[ev.key] += cents(ev.value["amount"])
            elif ev.kind == "refund":
                refunds[ev.key] += cents(ev.value["amount"])
            elif ev.kind == "interaction":
                interactions[ev.key] += 1
        rep = run.report
        assert rep.emitted == len(run.events)
        assert rep.orders == sum(orders.values()) and rep.revenue_cents == sum(revenue.values())
        assert rep.refunded_cents == sum(refunds.values())
        for cid, t in rep.customers.items():
            assert (t.orders, t.revenue_cents, t.refunded_cents, t.interactions) == (
                orders[cid], revenue[cid], refunds[cid], interactions[cid]
            ), cid
            assert run.generator.truth(cid) == t
    with pytest.raises(KeyError):
        run_2000.generator.truth("cust-999999")


# --------------------------------------------------------------- malformed


@pytest.mark.parametrize("case", MALFORMED_CASES)
def test_each_malformed_case_gets_its_reason(case, validators, run_2000):
    bases = [None]
    for kind, sub in (("order", None), ("refund", None), ("customer", "signup"), ("customer", "update"),
                      ("interaction", "nps"), ("interaction", "referral")):  # fmt: skip
        bases.append(next(e.value for e in run_2000.events if e.kind == kind and e.value.get("kind") == sub))
    for seed in range(12):
        rng = random.Random(seed)
        for base in bases:
            payload, reason = make_malformed(case, rng, base)
            assert isinstance(payload, bytes) and reason in REJECTION_CLASSES
            assert classify(payload, validators) == reason, (case, payload[:300])
            if reason == "too_large":  # the size is the only defect
                assert classify(payload, validators, check_size=False) == "ok"


def test_malformed_payload_covers_every_reason(validators):
    rng = random.Random(1)
    reasons = Counter()
    for _ in range(600):
        payload, reason = malformed_payload(rng)
        assert classify(payload, validators) == reason
        reasons[reason] += 1
    assert set(reasons) == set(REJECTION_CLASSES)
    # an accepted-currency mismatch also works for another configured currency
    payload, reason = make_malformed("unknown_currency", random.Random(2), currency="USD")
    assert classify(payload, validators, accepted=("USD",)) == reason == "unsupported_currency"


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**64))
def test_malformed_payload_property(validators, seed):
    payload, reason = malformed_payload(random.Random(seed))
    assert classify(payload, validators) == reason


# ------------------------------------------------------------- misc / CLI


def test_config_validation():
    with pytest.raises(ValueError):
        GeneratorConfig(share_duplicates=1.5)
    with pytest.raises(ValueError):
        GeneratorConfig(currency="euro")
    with pytest.raises(ValueError):
        TrueParameters(r=0)
    cfg = GeneratorConfig(start="2024-06-01T12:00:00Z", currency="USD", customers=50, seed=2)
    evs = list(EventGenerator(cfg).events(limit=200))
    assert evs[0].event_time_ms >= cfg.start_ms and evs[0].value["event_time"].startswith("2024-06")
    assert {e.value["currency"] for e in evs if "currency" in e.value} == {"USD"}


def test_cli_prints_json_lines():
    proc = subprocess.run(
        [sys.executable, "-m", "streams.generator", "--customers", "100", "--limit", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert len(lines) == 20
    recs = [json.loads(line) for line in lines]
    assert recs[0]["topic"] == "customers" and recs[0]["value"]["customer_id"] == recs[0]["key"]
