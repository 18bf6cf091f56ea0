"""Policy files: YAML, checked against ``schemas/policy/v1.schema.json`` and then
semantically (bounds ascending, names known, every cell covered...).

Every problem is reported with the file, the line and the field it is about
(from the YAML node marks), all at once, and the file is rejected: a worker or
command never starts with half a policy.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import yaml
from jsonschema import Draft202012Validator

from ..validation import SCHEMA_DIR
from .criteria import EVERY, CriteriaPolicy, Criterion, ExitRule, ScoredSegment
from .matrix import SEGMENTS as MATRIX_SEGMENTS, MatrixPolicy
from .rfm import FALLBACK, NO_ORDERS, NO_ORDERS_LEVEL, STANDARD_RULES, RfmPolicy, RfmRule

Path_ = Tuple[Union[str, int], ...]
COMMON = {"format_version", "kind", "name", "version", "description", "min_population", "stability"}
KIND_FIELDS = {"matrix": {"value", "loyalty", "service_levels"},
               "criteria": {"criteria", "segments", "fallback_cut_offs", "exit", "overrides"},
               "rfm": {"segments", "no_orders", "fallback"}}


class PolicyFileError(ValueError):
    """A policy file that cannot be used; the message lists every problem with line and field."""


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / "policy" / "v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def field_name(path: Sequence[Union[str, int]]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _Problems:
    def __init__(self, source: str, root: Optional[yaml.Node]):
        self.source, self.root, self.items = source, root, []

    def line_of(self, path: Path_) -> Optional[int]:
        node, line = self.root, (self.root.start_mark.line + 1 if self.root is not None else None)
        for part in path:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == str(part):
                        nxt, line = v, k.start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                nxt = node.value[part]
                line = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return line

    def add(self, path: Path_, message: str) -> None:
        self.items.append((self.line_of(path) or 0, field_name(path), message))

    def raise_if_any(self) -> None:
        if self.items:
            lines = [f"{self.source}, line {line}, field {name}: {msg}" for line, name, msg in sorted(self.items)]
            raise PolicyFileError("invalid policy file:\n  " + "\n  ".join(lines))


def _duplicate_keys(node: Optional[yaml.Node], path: Path_, problems: _Problems) -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            if k.value in seen:
                problems.items.append((k.start_mark.line + 1, field_name(path + (k.value,)), "duplicate key"))
            seen.add(k.value)
            _duplicate_keys(v, path + (k.value,), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _duplicate_keys(v, path + (i,), problems)


def load_policy_file(path: Union[str, Path]):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc.strerror}") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>"):
    """A policy object from the YAML text, or PolicyFileError naming each problem's line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyFileError(f"invalid policy file:\n  {source}{where}: not valid YAML: "
                              f"{getattr(exc, 'problem', None) or exc}") from None
    problems = _Problems(source, root)
    if not isinstance(doc, dict):
        problems.add((), "a policy file is a YAML mapping (format_version, kind, name, version, ...)")
        problems.raise_if_any()
    _duplicate_keys(root, (), problems)
    for error in _validator().iter_errors(doc):
        epath = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                problems.add(epath + (extra,), "unknown field")
            continue
        if error.validator == "required":
            missing = message.split("'")[1] if "'" in message else ""
            message = f"required field {missing!r} is missing"
        problems.add(epath, message)
    kind = doc.get("kind")
    if kind in KIND_FIELDS:
        for key in doc:
            if key not in COMMON and key in set().union(*KIND_FIELDS.values()) and key not in KIND_FIELDS[kind]:
                problems.add((key,), f"not a field of a {kind} policy")
    problems.raise_if_any()  # the semantic checks below rely on the schema's shapes
    build = {"matrix": _matrix, "criteria": _criteria, "rfm": _rfm}[kind]
    policy = build(doc, problems)
    problems.raise_if_any()
    return policy


def _common(doc: Dict[str, Any]) -> Dict[str, Any]:
    stability = doc.get("stability", {})
    out = {"name": doc["name"], "version": str(doc["version"])}
    if "hysteresis" in stability:
        out["hysteresis"] = float(stability["hysteresis"])
    if "min_dwell_days" in stability:
        out["min_dwell_days"] = float(stability["min_dwell_days"])
    if "min_population" in doc:
        out["min_population"] = int(doc["min_population"])
    return out


def _construct(cls, problems: _Problems, path: Path_, **kw):
    try:
        return cls(**kw)
    except ValueError as exc:  # a last guard: the explicit checks should have caught it with a finer field
        problems.add(path, str(exc))
        return None


def _matrix(doc, problems: _Problems) -> Optional[MatrixPolicy]:
    levels = doc["service_levels"]
    for seg in MATRIX_SEGMENTS:
        if seg not in levels:
            problems.add(("service_levels",), f"service level for {seg!r} is missing")
    for seg in levels:
        if seg not in MATRIX_SEGMENTS:
            problems.add(("service_levels", seg), f"not a matrix segment (one of {list(MATRIX_SEGMENTS)})")
    value, loyalty = doc.get("value", {}), doc.get("loyalty", {})
    kw = _common(doc)
    for src, key, dst in ((value, "metric", "value_metric"), (value, "high_value_threshold", "high_value_threshold"),
                          (value, "high_value_top_share", "high_value_top_share"),
                          (loyalty, "min_orders_365d", "loyalty_min_orders_365d"),
                          (loyalty, "max_recency_days", "loyalty_max_recency_days"),
                          (loyalty, "min_last_nps", "loyalty_min_last_nps"),
                          (loyalty, "at_risk_p_alive", "at_risk_p_alive")):
        if key in src:
            kw[dst] = src[key]
    if problems.items:
        return None
    return _construct(MatrixPolicy, problems, (), service_levels={k: dict(v) for k, v in levels.items()}, **kw)


def _criteria(doc, problems: _Problems) -> Optional[CriteriaPolicy]:
    names = [c["name"] for c in doc["criteria"]]
    categories = {}
    for i, c in enumerate(doc["criteria"]):
        at = ("criteria", i)
        if names.count(c["name"]) > 1:
            problems.add(at + ("name",), f"criterion name {c['name']!r} is used more than once")
        bounds = c["bounds"]
        if list(bounds) != sorted(set(bounds)):
            problems.add(at + ("bounds",), "bounds must be strictly ascending (answer categories in order)")
        n = len(bounds) + 1
        categories[c["name"]] = n
        if "categories" in c and len(c["categories"]) != n:
            problems.add(at + ("categories",), f"{n} category labels expected ({len(bounds)} bounds)")
        if c.get("missing_score", 1) > n:
            problems.add(at + ("missing_score",), f"must be 1..{n}")
    segments = doc["segments"]
    seg_names = [s["name"] for s in segments]
    if not 2 <= len(segments) <= 4:
        problems.add(("segments",), "2 to 4 ranked segments (the seed advises 3 or 4; exit comes on top)")
    for i, s in enumerate(segments):
        if seg_names.count(s["name"]) > 1:
            problems.add(("segments", i, "name"), f"segment name {s['name']!r} is used more than once")
        for crit, minimum in s.get("min_scores", {}).items():
            if crit != EVERY and crit not in categories:
                problems.add(("segments", i, "min_scores", crit), "not a criterion name (or * for every criterion)")
            elif crit != EVERY and minimum > categories[crit]:
                problems.add(("segments", i, "min_scores", crit), f"{crit} has only {categories[crit]} categories")
        for key in ("recency", "fm"):
            if key in s:
                problems.add(("segments", i, key), "only RFM segments have score ranges")
    if segments and segments[-1].get("min_scores"):
        problems.add(("segments", len(segments) - 1, "min_scores"),
                     "the last ranked segment cannot require minimum scores (a customer failing them has "
                     "nowhere to fall)")
    cuts = doc["fallback_cut_offs"]
    if len(cuts) != max(0, len(segments) - 1):
        problems.add(("fallback_cut_offs",), f"{len(segments) - 1} total scores expected, one per boundary "
                                             f"between the {len(segments)} ranked segments")
    elif list(cuts) != sorted(set(cuts), reverse=True):
        problems.add(("fallback_cut_offs",), "total scores must be strictly descending (A's cut-off first)")
    exit_rule = None
    if "exit" in doc:
        e = doc["exit"]
        if e["name"] in seg_names:
            problems.add(("exit", "name"), "the exit segment needs a name of its own")
        if e.get("lowest_on_at_least", 1) > len(names):
            problems.add(("exit", "lowest_on_at_least"), f"there are only {len(names)} criteria")
        exit_rule = ExitRule(e["name"], dict(e["service_level"]), e.get("lowest_on_at_least"),
                             float(e.get("grace_days", 0.0)))
    all_names = set(seg_names) | ({doc["exit"]["name"]} if "exit" in doc else set())
    for cid, seg in doc.get("overrides", {}).items():
        if seg not in all_names:
            problems.add(("overrides", cid), f"unknown segment {seg!r} (one of {sorted(all_names)})")
    if problems.items:
        return None
    criteria = [Criterion(c["name"], c["feature"], tuple(float(b) for b in c["bounds"]),
                          c.get("higher_is_better", True), float(c.get("weight", 1.0)), c.get("missing_score", 1))
                for c in doc["criteria"]]
    ranked = tuple(ScoredSegment(s["name"], dict(s["service_level"]), dict(s.get("min_scores", {})))
                   for s in segments)
    return _construct(CriteriaPolicy, problems, (), criteria=tuple(criteria), ranked=ranked,
                      fallback_cut_offs=tuple(float(c) for c in cuts), exit=exit_rule,
                      overrides=dict(doc.get("overrides", {})), **_common(doc))


def _rfm(doc, problems: _Problems) -> Optional[RfmPolicy]:
    rules = STANDARD_RULES
    if "segments" in doc:
        rules = []
        for i, s in enumerate(doc["segments"]):
            for key in ("recency", "fm"):
                if key not in s:
                    problems.add(("segments", i), f"required field {key!r} is missing")
                elif s[key][0] > s[key][1]:
                    problems.add(("segments", i, key), "score range must be [low, high]")
            if "min_scores" in s:
                problems.add(("segments", i, "min_scores"), "only criteria segments have minimum scores")
            if not problems.items:
                rules.append(RfmRule(s["name"], tuple(s["recency"]), tuple(s["fm"]), dict(s["service_level"])))
        if not problems.items:
            from .rfm import check_coverage
            try:
                check_coverage(rules)
            except ValueError as exc:
                problems.add(("segments",), str(exc))
    fallback = dict(FALLBACK)
    for key, bounds in doc.get("fallback", {}).items():
        if list(bounds) != sorted(set(bounds)):
            problems.add(("fallback", key), "four strictly ascending bounds expected")
        fallback[key] = tuple(float(b) for b in bounds)
    no_orders = doc.get("no_orders", {"name": NO_ORDERS, "service_level": NO_ORDERS_LEVEL})
    if problems.items:
        return None
    return _construct(RfmPolicy, problems, (), rules=tuple(rules), no_orders_segment=no_orders["name"],
                      no_orders_service_level=dict(no_orders["service_level"]), fallback=fallback,
                      **_common(doc))
