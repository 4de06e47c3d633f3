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
    (event,) = record_events(
        actor,
        [
            {
                "action": action,
                "outcome": outcome,
                "purpose": purpose,
                "patient_id": patient_id,
                "object_type": object_type,
                "object_id": object_id,
                "reason": reason,
                "detail": detail,
            }
        ],
        username=username,
    )
    return event


_EVENT_KEYS = frozenset(
    ("action", "outcome", "purpose", "patient_id", "object_type", "object_id", "reason", "detail")
)


@transaction.atomic
def record_events(actor, events: list[dict[str, Any]], *, username: str = "") -> list[AuditEvent]:
    """Append several events by the same actor, in order, in the caller's transaction:
    one lock of the chain head and one insert for all of them (a batch of refused
    import units). Each dict takes :func:`record_event`'s keyword arguments (``action``
    required; ``outcome`` defaults to allowed)."""
    if not events:
        return []
    context = current_request_context()
    fields = _actor_fields(actor)
    if fields["actor"] is None and username:
        fields["actor_username"] = username[:150]
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    # Read inside the lock, so occurred_at follows seq but for the clock stepping back.
    occurred_at = clock.now()
    rows: list[AuditEvent] = []
    seq, prev_hash = head.last_seq, head.last_hash
    for spec in events:
        unknown = set(spec) - _EVENT_KEYS
        if unknown:
            raise TypeError(f"record_events: unknown keys {sorted(unknown)}")
        patient_id = spec.get("patient_id")
        seq += 1
        event = AuditEvent(
            seq=seq,
            occurred_at=occurred_at,
            action=str(spec["action"]),
            outcome=str(spec.get("outcome") or Outcome.ALLOWED),
            purpose=str(spec.get("purpose") or ""),
            patient_id=uuid.UUID(str(patient_id)) if patient_id else None,
            object_type=spec.get("object_type") or "",
            object_id=str(spec.get("object_id") or ""),
            reason=spec.get("reason") or "",
            detail=spec.get("detail") or {},
            client_ip=context.client_ip if context else None,
            user_agent=context.user_agent if context else "",
            path=context.path if context else "",
            prev_hash=prev_hash,
            **fields,
        )
        event.row_hash = prev_hash = event.compute_hash()
        rows.append(event)
    if len(rows) == 1:
        rows[0].save(force_insert=True)
    else:
        AuditEvent.objects.bulk_create(rows, batch_size=500)
    latest = head.max_occurred_at or occurred_at
    AuditChainHead.objects.filter(pk=1).update(
        last_seq=seq,
        last_hash=prev_hash,
        max_occurred_at=max(latest, occurred_at),
        max_step_back=max(head.max_step_back, latest - occurred_at),
    )
    return rows
