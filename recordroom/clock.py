"""The one source of "now" for business logic.

Deadline arithmetic calls :func:`now` rather than ``timezone.now`` directly, so tests
move time with ``time_machine`` and production can be pinned for a replay.
"""

from django.utils import timezone


def now():
    return timezone.now()
