"""What the demo prints, from real segment-change documents of the engine."""
from __future__ import annotations

from streams.demo_screen import DemoTally, WorkerFigures, move_kind, parse_worker_metrics

HV_HL, HV_LL, LV_HL, LV_LL = ("High Value / High Loyalty", "High Value / Low Loyalty",
                              "Low Value / High Loyalty", "Low Value / Low Loyalty")


def change(previous, segment, reason, value=515.83, predicted=31.31, p_alive=0.93, day="2025-03-14"):
    return {"customer_id": "cust-000412", "previous_segment": previous, "segment": segment, "reason": reason,
            "event_time": f"{day}T10:00:00Z",
            "criteria": {"value_metric": "formula", "value": value, "high_value_threshold": 500.0},
            "clv": {"formula": value, "predicted": predicted, "potential": 40.0, "p_alive": p_alive,
                    "historical_revenue": 1.0, "historical_margin": 1.0, "currency": "EUR"}}


def test_first_assessments_are_counted_not_printed():
    tally = DemoTally(customers_at_start=10)
    assert tally.on_change(change(None, LV_LL, "first assessment; value low: ...")) is None
    assert tally.first_assessments == 1 and not tally.moves
    assert "LV/LL 1" in tally.segments_text()


def test_a_move_shows_the_clv_the_decision_used():
    """The reason says 'formula CLV 515.83 >= 500': the line must show that figure, not predicted 31.31."""
    tally = DemoTally(customers_at_start=10)
    tally.on_change(change(None, LV_HL, "first assessment"))
    line = tally.on_change(change(LV_HL, HV_HL, "value high: formula CLV 515.83 >= 500.00"))
    assert "LV/HL -> HV/HL" in line and "value up" in line
    assert "formula CLV    515.83" in line and "31.31" not in line
    assert "P(alive) 0.93" in line
    assert tally.population == {LV_HL: 0, HV_HL: 1}


def test_move_kinds():
    assert move_kind(LV_LL, HV_LL, "value high") == "value up"
    assert move_kind(HV_HL, HV_LL, "loyalty low: last order 130 days ago > 120") == "loyalty down"
    assert move_kind(HV_HL, HV_LL, "loyalty low: at risk of churn: P(alive) 0.41 < 0.50") == "at risk"
    assert move_kind(LV_LL, HV_HL, "value high; loyalty high") == "value up + loyalty up"
    assert move_kind("B", "Exit", "lowest on 3 criteria") == "exit"


def test_status_line_has_every_field_whatever_the_traffic():
    tally = DemoTally(customers_at_start=2000)
    quiet = tally.status(3.2, 0.0, None, None)
    assert quiet.startswith("[00:03] sent 0 (0/s) | worker starting |")
    assert "no event yet" in quiet and "no customer assessed yet" in quiet
    assert "||" not in quiet.replace(" ", "") and not any(part.strip() == "" for part in quiet.split("|"))
    tally.on_sent("cust-000001")
    tally.on_sent("cust-000001")
    tally.on_change(change(None, LV_LL, "first assessment"))
    tally.on_dead_letter({"reason": "malformed_json"})
    busy = tally.status(75, 498.7, WorkerFigures(processed=1500, lag=20), 480.2)
    assert busy.startswith("[01:15] sent 2 (499/s) | read 1,500 (480/s), lag 20 | customers 1, first assessed 1")
    assert "dead letters 1" in busy and "at 2025-03-14" in busy


def test_summary_names_the_customer_count_as_it_grew():
    tally = DemoTally(customers_at_start=2)
    for cid in ("cust-000001", "cust-000002", "cust-000003"):
        tally.on_sent(cid)
    tally.on_change(change(None, LV_LL, "first assessment"))
    tally.on_change(change(LV_LL, LV_HL, "loyalty high"))
    summary = "\n".join(tally.summary(12.4))
    assert summary.startswith("stopped after 12 s: 3 events sent, 2 segment changes, 0 dead letters")
    assert "customers    3 (2 at the start" in summary and "loyalty up 1" in summary


def test_worker_figures_from_the_exposition():
    text = ('# TYPE clvstream_events_total counter\n'
            'clvstream_events_total{type="order",outcome="applied"} 10.0\n'
            'clvstream_events_total{type="nps",outcome="duplicate"} 2.0\n'
            '# TYPE clvstream_consumer_lag_records gauge\n'
            'clvstream_consumer_lag_records{topic="clv.orders",partition="0"} 5.0\n'
            'clvstream_consumer_lag_records{topic="clv.orders",partition="1"} 7.0\n')
    assert parse_worker_metrics(text) == WorkerFigures(processed=12.0, lag=12.0)


def test_history_days_span_the_event_dates_seen():
    tally = DemoTally(customers_at_start=1)
    assert tally.history_days() == 0
    tally.on_change(change(None, LV_LL, "first assessment", day="2025-02-01"))
    tally.on_change(change(None, LV_LL, "first assessment", day="2025-01-01"))
    tally.on_change(change(None, LV_LL, "first assessment", day="2025-04-01"))
    assert tally.history_days() == 90
