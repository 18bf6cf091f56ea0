"""Policy files: every example loads; every mistake is named by line and field, and rejected."""
from pathlib import Path

import pytest

from streams.core.policies import CriteriaPolicy, MatrixPolicy, PolicyFileError, RfmPolicy, load_policy_file, parse_policy
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CRITERIA = (ROOT / "deploy/policies/criteria.yaml").read_text()


@pytest.mark.parametrize("kind,cls", [("matrix", MatrixPolicy), ("criteria", CriteriaPolicy), ("rfm", RfmPolicy)])
def test_example_policies_load(kind, cls):
    policy = load_policy_file(ROOT / "deploy/policies" / f"{kind}.yaml")
    assert isinstance(policy, cls) and policy.kind == kind
    assert set(policy.service_levels) == set(policy.segments)  # a service level for every segment


def test_example_criteria_policy_is_the_seeds_recipe():
    p = load_policy_file(ROOT / "deploy/policies/criteria.yaml")
    assert [s.name for s in p.ranked] == ["A", "B", "C"] and p.exit.name == "Exit"
    assert all(3 <= c.categories <= 4 for c in p.criteria)
    assert p.ranked[0].min_scores == {"revenue": 3, "margin": 3} and p.exit.lowest_on_at_least == 6


def error_of(text: str) -> str:
    with pytest.raises(PolicyFileError) as info:
        parse_policy(text, "p.yaml")
    return str(info.value)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_schema_errors_name_line_and_field():
    bad = CRITERIA.replace("bounds: [2, 4, 8]", 'bounds: [2, "four", 8]')
    msg = error_of(bad)
    assert f"p.yaml, line {line_of(bad, 'four')}, field criteria[2].bounds[1]: 'four' is not of type 'number'" in msg


def test_semantic_errors_name_line_and_field():
    bad = CRITERIA.replace("bounds: [20, 80, 400]", "bounds: [80, 20, 400]").replace(
        "fallback_cut_offs: [20, 14]", "fallback_cut_offs: [14, 20]").replace(
        "min_scores: {revenue: 3, margin: 3}", "min_scores: {revenue: 3, margn: 3}")
    msg = error_of(bad)
    assert f"line {line_of(bad, '[80, 20, 400]')}, field criteria[1].bounds: bounds must be strictly ascending" in msg
    assert f"line {line_of(bad, 'fallback_cut_offs: [14')}, field fallback_cut_offs: total scores must be strictly " \
           f"descending" in msg
    assert f"line {line_of(bad, 'margn')}, field segments[0].min_scores.margn: not a criterion name" in msg


def test_unknown_and_duplicate_and_misplaced_fields():
    bad = CRITERIA.replace("min_population: 30", "min_population: 30\nmin_populaton: 3\nname: again\n"
                                                 "service_levels: {}")
    msg = error_of(bad)
    assert f"line {line_of(bad, 'min_populaton')}, field min_populaton: unknown field" in msg
    assert f"line {line_of(bad, 'name: again')}, field name: duplicate key" in msg
    assert f"line {line_of(bad, 'service_levels: {}')}, field service_levels: not a field of a criteria policy" in msg


def test_missing_service_level_and_bad_yaml():
    matrix = (ROOT / "deploy/policies/matrix.yaml").read_text()
    cut = matrix.split("  Low Value / Low Loyalty")[0]
    assert "service level for 'Low Value / Low Loyalty' is missing" in error_of(cut)
    assert "p.yaml, line 3: not valid YAML" in error_of("format_version: 1\nkind: rfm\nname: a: b\n")
    segment_without_level = CRITERIA.replace(
        "  - name: C\n    service_level:", "  - name: C\n    service_levl:")
    assert "required field 'service_level' is missing" in error_of(segment_without_level)


def test_last_segment_cannot_demand_minimum_scores_and_exit_needs_enough_criteria():
    bad = CRITERIA.replace("  - name: C\n", "  - name: C\n    min_scores: {'*': 2}\n").replace(
        "lowest_on_at_least: 6", "lowest_on_at_least: 9")
    msg = error_of(bad)
    assert "field segments[2].min_scores: the last ranked segment cannot require minimum scores" in msg
    assert f"line {line_of(bad, 'lowest_on_at_least: 9')}, field exit.lowest_on_at_least: there are only 7" in msg


def test_rfm_rules_must_cover_every_cell():
    rfm = (ROOT / "deploy/policies/rfm.yaml").read_text()
    start = rfm.index("  - {name: Lost")
    end = rfm.index("no_orders:")
    msg = error_of(rfm[:start] + rfm[end:])  # drop Lost and Hibernating
    assert "field segments: RFM rules leave (R, FM) cells without a segment: [(1, 1), (1, 2)" in msg


def test_settings_reject_a_bad_policy_file_at_start_up(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text(CRITERIA.replace("weight: 2}", "weight: -2}"))
    with pytest.raises(PolicyFileError, match=r"line \d+, field criteria\[1\]\.weight: -2 is less than or equal"):
        Settings.from_env({"CLV_POLICY_FILE": str(bad)})
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        Settings.from_env({"CLV_POLICY_FILE": str(tmp_path / "missing.yaml")})
    good = Settings.from_env({"CLV_POLICY_FILE": str(ROOT / "deploy/policies/rfm.yaml")})
    assert good.engine_config().policy.name == "rfm-standard"
    assert isinstance(Settings.from_env({}).engine_config().policy, MatrixPolicy)  # the default: today's matrix
