"""Test sets and suites: a codec scored on a set of clips in classes, as the field reports
codecs (BD-rate per clip and per class on several metrics, times against the anchor)."""

from aicodec.suites.run import ClassResult, ClipResult, SuiteResult, run_suite
from aicodec.suites.sets import SetClip, TestSet, load_set, shipped_sets

__all__ = [
    "ClassResult",
    "ClipResult",
    "SetClip",
    "SuiteResult",
    "TestSet",
    "load_set",
    "run_suite",
    "shipped_sets",
]
