"""Writing to the audit trail: the one function every other app calls."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from audit.models import Action, AuditChainHead, AuditEvent, Outcome
from recordroom import clock
from recordroom.middleware import current_request_context


def _actor_fields(actor) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_username": "", "actor_roles": ""}
    from accounts.roles import role_codes

    return {
        "actor": actor,
        "actor_username": actor.get_username(),
        "actor_roles": ",".join(sorted(role_codes(actor))),
    }


@transaction.atomic
def record_event(
    actor,
    action: Action | str,
    *,
    outcome: Outcome | str = Outcome.ALLOWED,
    purpose: str = "",
    patient_id: uuid.UUID | str | None = None,
    object_type: str = "",
    object_id: str | uuid.UUID = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one event to the hash-chained trail, in the caller's transaction.

    ``actor`` is the acting user (None for an anonymous attempt; then ``username`` may
    name what was typed). ``detail`` carries ids and codes only, never names or other
    patient data. Where the request came from is read from the request context.
    """
    context = current_request_context()
    fields = _actor_fields(actor)
    if fields["actor"] is None and username:
        fields["actor_username"] = username[:150]
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    # Read inside the lock, so occurred_at follows seq but for the clock stepping back.
    occurred_at = clock.now()
    event = AuditEvent(
        seq=head.last_seq + 1,
        occurred_at=occurred_at,
        action=str(action),
        outcome=str(outcome),
        purpose=str(purpose),
        patient_id=uuid.UUID(str(patient_id)) if patient_id else None,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        detail=detail or {},
        client_ip=context.client_ip if context else None,
        user_agent=context.user_agent if context else "",
        path=context.path if context else "",
        prev_hash=head.last_hash,
        **fields,
    )
    event.row_hash = event.compute_hash()
    event.save(force_insert=True)
    latest = head.max_occurred_at or occurred_at
    AuditChainHead.objects.filter(pk=1).update(
        last_seq=event.seq,
        last_hash=event.row_hash,
        max_occurred_at=max(latest, occurred_at),
        max_step_back=max(head.max_step_back, latest - occurred_at),
    )
    return event
