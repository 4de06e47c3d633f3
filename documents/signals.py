"""Signals other apps listen to (chart completion re-analyses an encounter's record).

``document_changed`` is sent inside the action's transaction after a document is created,
revised, signed, amended, given an addendum or marked entered in error, with
``document`` and ``change`` (the action name). Receivers must not fail the action: do the
work in ``transaction.on_commit``.
"""

from django.dispatch import Signal

document_changed = Signal()
