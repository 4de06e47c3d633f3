"""Signals other apps listen to (chart completion re-analyses a record when a diagnosis
or procedure of the encounter changes).

``clinical_entry_changed`` is sent inside the action's transaction after an entry is
recorded, updated or marked entered in error, with ``entry`` and ``change``. Bulk
writers (the FHIR import) do not send it: they decide themselves what to re-analyse.
"""

from django.dispatch import Signal

clinical_entry_changed = Signal()
