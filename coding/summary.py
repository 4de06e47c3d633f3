"""Rows for the coding panels on the home page (recordroom/home.py). Each returns a
short list of dicts for ``coding/_home_*.html``; empty until the coding work lands."""

from __future__ import annotations


def work_queue(user) -> list:
    """Discharged encounters ready for coding, oldest first (coders)."""
    return []


def open_queries(user) -> list:
    """Physician queries the coder asked that wait for an answer."""
    return []


def my_queries(user) -> list:
    """Queries waiting for this clinician's answer."""
    return []
