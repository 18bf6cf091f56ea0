"""Segmentation policies: value x loyalty matrix, criteria scoring (A/B/C + exit), RFM.

``Policy`` (base.py) is what the engine needs of any of them; ``load_policy_file``
reads a policy file (YAML, schemas/policy/v1.schema.json).
"""
from .base import Assessment, PAliveCrossing, Policy, Stability
from .criteria import CriteriaPolicy, Criterion, ExitRule, ScoredSegment
from .loading import PolicyFileError, load_policy_file, parse_policy
from .matrix import MatrixPolicy
from .rfm import RfmPolicy, RfmRule

__all__ = ["Assessment", "PAliveCrossing", "Policy", "Stability", "CriteriaPolicy", "Criterion", "ExitRule",
           "ScoredSegment", "PolicyFileError", "load_policy_file", "parse_policy", "MatrixPolicy", "RfmPolicy",
           "RfmRule"]
