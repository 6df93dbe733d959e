"""Scoring: quality metrics, BD-rate, and the runs that score a candidate on clips."""
