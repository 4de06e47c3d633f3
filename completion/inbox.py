"""The in-app inbox: reminders about chart completion, addressed to one user.

A message never names a patient (it carries counts, dates and a link to the work
queue), so reading one's own inbox is not an access to patient data. Everyone with a
role that signs in to the web pages has an inbox: clinicians receive reminders, HIM
administrators the notices about deficiencies nobody can complete. A user reads and
marks only their own messages; another user's message answers as if it did not exist.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.access import AccessDenied
from accounts.roles import Role, role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from completion.models import InboxMessage
from recordroom import clock

OBJECT_TYPE = "completion.inbox_message"
# Most messages one request marks read (the page shows at most a page of them).
MAX_MARK = 200


def may_use_inbox(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if getattr(user, "is_system_account", False):
        return False
    codes = role_codes(user)
    return bool(codes) and codes != {Role.INTEGRATION.value}


def _require_inbox(user, action: str = Action.VIEW) -> None:
    if may_use_inbox(user):
        return
    record_event(
        user if getattr(user, "is_authenticated", False) else None,
        action,
        outcome=Outcome.DENIED,
        purpose=Purpose.OPERATIONS,
        object_type=OBJECT_TYPE,
        reason="no role with an inbox",
    )
    raise AccessDenied("an interactive role is required for the inbox")


def my_inbox(user, *, unread_only: bool = False):
    """The user's own messages, newest first."""
    _require_inbox(user)
    messages = InboxMessage.objects.filter(recipient=user).order_by("-created_at", "-pk")
    if unread_only:
        messages = messages.filter(read_at__isnull=True)
    return messages


def unread_count(user) -> int:
    """Unread messages of the user; 0 for a user without an inbox (no refusal: the home
    page and navigation ask for every user)."""
    if not may_use_inbox(user):
        return 0
    return InboxMessage.objects.filter(recipient=user, read_at__isnull=True).count()


def do_mark_read(user, keys: list[str] | None = None, *, acting_user) -> int:
    """Mark the acting user's messages read: those named by ``keys`` (their dedupe keys),
    or every unread one when ``keys`` is None. Only one's own inbox: a key of another
    user's message is refused with the same error as an unknown one. Returns how many
    messages changed (already-read ones are left as they were)."""
    _require_inbox(acting_user, Action.UPDATE)
    if user != acting_user:
        record_event(
            acting_user,
            Action.UPDATE,
            outcome=Outcome.DENIED,
            purpose=Purpose.OPERATIONS,
            object_type=OBJECT_TYPE,
            reason="another user's inbox",
        )
        raise AccessDenied("only one's own inbox")
    if keys is not None:
        keys = sorted({str(k).strip() for k in keys if str(k).strip()})
        if not keys:
            raise ValidationError({"message": "Choose at least one message."})
        if len(keys) > MAX_MARK:
            raise ValidationError({"message": f"At most {MAX_MARK} messages at once."})
    with transaction.atomic():
        mine = InboxMessage.objects.filter(recipient=user)
        if keys is not None:
            found = set(mine.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
            if found != set(keys):
                raise ValidationError({"message": "No such message in your inbox."})
            mine = mine.filter(dedupe_key__in=keys)
        now = clock.now()
        changed = mine.filter(read_at__isnull=True).update(read_at=now)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            object_type=OBJECT_TYPE,
            reason="inbox messages marked read",
            detail={"marked": changed, "all": keys is None},
        )
    return changed
