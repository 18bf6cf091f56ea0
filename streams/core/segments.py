"""The value x loyalty matrix, kept importable here: it moved to ``policies/matrix.py``
when the other policies (criteria scoring, RFM) arrived."""
from .policies.base import Assessment
from .policies.matrix import (DEFAULT_SERVICE_LEVELS, HV_HL, HV_LL, LV_HL, LV_LL, SEGMENTS, MatrixPolicy, assess,
                              next_review_ms, value_of)

__all__ = ["Assessment", "DEFAULT_SERVICE_LEVELS", "HV_HL", "HV_LL", "LV_HL", "LV_LL", "SEGMENTS", "MatrixPolicy",
           "assess", "next_review_ms", "value_of"]
