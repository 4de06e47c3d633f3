"""Signals other apps listen to (chart completion analyses a record at discharge).

``encounter_changed`` is sent inside the action's transaction after an encounter is
registered, started, transferred, discharged, has its discharge cancelled, is corrected or
cancelled, with ``encounter`` and ``change`` (the action name). Receivers must not fail
the action: do the work in ``transaction.on_commit``.
"""

from django.dispatch import Signal

encounter_changed = Signal()
