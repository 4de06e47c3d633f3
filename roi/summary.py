"""Rows for the release-of-information panels on the home page (recordroom/home.py);
empty until the ROI work lands."""

from __future__ import annotations


def due_soon(user) -> list:
    """Open requests by days left (ROI specialists)."""
    return []


def pended(user) -> list:
    """Requests waiting for something from the requester."""
    return []
