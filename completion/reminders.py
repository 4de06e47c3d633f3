"""Reminders before a record becomes delinquent: an inbox message, and an e-mail
through Django's mail backend to the recipients who have an address.

``send_reminders`` runs daily (``recordroom completion remind`` from cron, or the
``completion.reminder_tasks`` task in the worker). What it sends:

* **Reminder** — for the open deficiencies of a clinician whose record becomes delinquent
  in ``d`` days or fewer, ``d`` one of the ``reminder_days`` of the completion policy in
  force today at the encounter's facility (e.g. 7, 3, 1). Days are calendar days in
  the department's time zone, so a 23- or 25-hour day across a daylight-saving change is
  still one day. Deficiencies that become delinquent on the same day form one group; a
  group is reminded once at each threshold it reaches: at 7 days, again at 3, again at
  1. A missed run sends the nearest threshold only, not the ones already passed.
* **Now delinquent** — one notice per clinician and day of delinquency, for the open
  deficiencies of records that turned delinquent. Runs catch up over the last
  ``COMPLETION_REMINDER_CATCH_UP_DAYS`` days (7 unless set), so a first run does not
  send a notice for every old delinquent record.
* **Reassignment needed** — a deficiency held by nobody, or by a user who can no longer
  sign in (inactive: a clinician who left the staff; or a system account), cannot be
  completed by its holder, and reminding them would reach no one. Instead each active
  HIM administrator of the encounter's facility gets one notice a day with the counts
  (those in a reminder window and those delinquent), until an analyst reassigns them.

Each message has a ``dedupe_key`` naming the recipient, the kind, the threshold and the
day, so running twice (or two workers at once) sends nothing twice; an e-mail is claimed
before it is sent, and a failed one is tried again by the next run the same day. The
texts hold no patient names or identifiers: counts, due dates and a link to the queue.
Every run is in the audit trail with its counts.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, Count, F, Q, Value, When
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Facility
from accounts.roles import Role
from audit.actions import record_event
from audit.models import Action, Purpose
from completion.models import Deficiency, DeficiencyStatus, InboxMessage
from recordroom import clock

log = logging.getLogger(__name__)

KIND_REMINDER = "completion_reminder"
KIND_DELINQUENT = "completion_delinquent"
KIND_REASSIGN = "completion_reassign"
EMAILED_KINDS = (KIND_REMINDER, KIND_DELINQUENT, KIND_REASSIGN)
OBJECT_TYPE = "completion.reminders"
_CHUNK = 500


def catch_up_days() -> int:
    return int(getattr(settings, "COMPLETION_REMINDER_CATCH_UP_DAYS", 7))


def _path(url_name: str, fallback: str) -> str:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return fallback


def queue_path() -> str:
    return _path("completion:queue", "/completion/mine")


def dashboard_path() -> str:
    return _path("completion:dashboard", "/completion/")


def _absolute(path: str) -> str:
    """The link as an e-mail shows it: absolute when SITE_URL names the site."""
    site = str(getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return f"{site}{path}" if site else path


def _date_text(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _when_text(days_left: int) -> str:
    if days_left <= 0:
        return "today"
    if days_left == 1:
        return "tomorrow"
    return f"in {days_left} days"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def _start_of(day: dt.date) -> dt.datetime:
    """The first instant of a local calendar day (midnight exists in US zones)."""
    tz = timezone.get_current_timezone()
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), tz)


def reminder_days_by_facility(on_date: dt.date) -> dict[int, list[int]]:
    """The reminder days of the completion policy in force on ``on_date``, by facility."""
    from completion.policy import policy_for

    result: dict[int, list[int]] = {}
    for facility in Facility.objects.order_by("pk"):
        policy = policy_for(facility, on_date)
        days = getattr(policy, "reminder_days", None) or []
        result[facility.pk] = sorted({int(d) for d in days if int(d) >= 0})
    return result


def threshold_for(days_left: int, reminder_days: list[int]) -> int | None:
    """The nearest threshold reached: the smallest ``d`` with ``days_left <= d``."""
    reached = [d for d in reminder_days if days_left <= d]
    return min(reached) if reached else None


@dataclass
class _Draft:
    recipient_id: int
    kind: str
    day: dt.date
    threshold: int | None = None
    deficiencies: int = 0
    records: int = 0
    delinquent: int = 0
    facility_name: str = ""

    def render(self, today: dt.date) -> tuple[str, str, str]:
        """Subject, body and link: counts and dates only, never a patient."""
        deficiencies = _plural(self.deficiencies, "deficiency", "deficiencies")
        records = _plural(self.records, "record")
        if self.kind == KIND_REMINDER:
            days_left = (self.day - today).days
            when = _when_text(days_left)
            link = queue_path()
            subject = f"Chart completion: {deficiencies} to complete, delinquent {when}"
            body = (
                f"You have {deficiencies} on {records} to complete or sign. If they are "
                f"still open, the {'record becomes' if self.records == 1 else 'records become'}"
                f" delinquent on {_date_text(self.day)} ({when}).\n\n"
                f"Your work queue lists them, nearest to delinquent first."
            )
        elif self.kind == KIND_DELINQUENT:
            link = queue_path()
            subject = f"Chart completion: {records} now delinquent"
            body = (
                f"{records.capitalize()} of yours became delinquent on "
                f"{_date_text(self.day)}, with {deficiencies} still open. Complete them "
                f"as soon as you can: delinquent records are reported to the medical staff."
            )
        else:
            link = dashboard_path()
            subject = f"Chart completion: {deficiencies} at {self.facility_name} to reassign"
            due = self.deficiencies - self.delinquent
            body = (
                f"{deficiencies.capitalize()} at {self.facility_name} belong to nobody or "
                f"to users who can no longer sign in, so no one is reminded of them: "
                f"{due} become delinquent soon and {self.delinquent} already are. "
                f"Reassign them to a clinician on the chart-completion pages."
            )
        return subject, body, link


def _reminder_rows(now: dt.datetime, horizon: dt.datetime, since: dt.datetime):
    """Open deficiencies of users who can sign in, that become delinquent before
    ``horizon`` or became delinquent since ``since``, counted in SQL by clinician,
    facility, local day of delinquency and whether that moment has passed."""
    tz = timezone.get_current_timezone()
    return (
        Deficiency.objects.filter(
            status=DeficiencyStatus.OPEN,
            delinquent_at__lt=horizon,
            delinquent_at__gte=since,
            responsible__is_active=True,
            responsible__is_system_account=False,
        )
        .annotate(
            day=TruncDate("delinquent_at", tzinfo=tz),
            facility_id=F("encounter__facility_id"),
            past=Case(
                When(delinquent_at__lte=now, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .values("responsible_id", "facility_id", "day", "past")
        .annotate(n=Count("pk"), records=Count("encounter_id", distinct=True))
        .order_by()
    )


def _unassigned_rows(now: dt.datetime, horizon: dt.datetime):
    """Open deficiencies nobody who can sign in holds, by facility: those in a reminder
    window and those delinquent (however long ago)."""
    return (
        Deficiency.objects.filter(status=DeficiencyStatus.OPEN, delinquent_at__lt=horizon)
        .filter(
            Q(responsible__isnull=True)
            | Q(responsible__is_active=False)
            | Q(responsible__is_system_account=True)
        )
        .values(facility_id=F("encounter__facility_id"))
        .annotate(n=Count("pk"), delinquent=Count("pk", filter=Q(delinquent_at__lte=now)))
        .order_by()
    )


def _drafts(now: dt.datetime) -> dict[str, _Draft]:
    today = timezone.localdate(now)
    days_by_facility = reminder_days_by_facility(today)
    longest = max((max(days) for days in days_by_facility.values() if days), default=0)
    horizon = _start_of(today + dt.timedelta(days=longest + 1))
    since = _start_of(today - dt.timedelta(days=catch_up_days()))
    users = get_user_model().objects
    drafts: dict[str, _Draft] = {}
    rows = list(_reminder_rows(now, horizon, since))
    public_ids = dict(
        users.filter(pk__in={r["responsible_id"] for r in rows}).values_list("pk", "public_id")
    )
    for row in rows:
        day = row["day"]
        user_key = public_ids[row["responsible_id"]]
        if row["past"]:
            kind, threshold = KIND_DELINQUENT, None
            key = f"completion:delinquent:{user_key}:{day.isoformat()}"
        else:
            threshold = threshold_for(
                (day - today).days, days_by_facility.get(row["facility_id"], [])
            )
            if threshold is None:
                continue
            kind = KIND_REMINDER
            key = f"completion:reminder:{user_key}:{threshold}d:{day.isoformat()}"
        draft = drafts.setdefault(key, _Draft(row["responsible_id"], kind, day, threshold))
        draft.deficiencies += row["n"]
        draft.records += row["records"]

    unassigned = list(_unassigned_rows(now, horizon))
    if unassigned:
        facilities = Facility.objects.in_bulk([r["facility_id"] for r in unassigned])
        for row in unassigned:
            facility = facilities[row["facility_id"]]
            administrators = users.filter(
                is_active=True,
                is_system_account=False,
                groups__name=Role.HIM_ADMINISTRATOR.value,
                facilities=facility,
            ).values_list("pk", "public_id")
            for admin_pk, admin_key in administrators.distinct():
                key = f"completion:reassign:{admin_key}:{facility.code}:{today.isoformat()}"
                draft = _Draft(admin_pk, KIND_REASSIGN, today, facility_name=facility.name)
                draft.deficiencies, draft.delinquent = row["n"], row["delinquent"]
                drafts[key] = draft
    return drafts


def _existing_keys(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        found.update(
            InboxMessage.objects.filter(dedupe_key__in=chunk).values_list("dedupe_key", flat=True)
        )
    return found


def _email_pending(now: dt.datetime) -> tuple[int, int]:
    """E-mail today's reminder messages not e-mailed yet, to recipients with an address.
    Each message is claimed (``emailed_at`` set) before its e-mail goes, so two runs at
    once send it once; a failed send releases the claim for the next run."""
    pending = (
        InboxMessage.objects.filter(
            kind__in=EMAILED_KINDS,
            emailed_at__isnull=True,
            read_at__isnull=True,
            created_at__gte=now - dt.timedelta(days=1),
            recipient__is_active=True,
        )
        .exclude(recipient__email="")
        .select_related("recipient")
        .order_by("pk")
    )
    sent = failed = 0
    for message in pending:
        claimed = InboxMessage.objects.filter(pk=message.pk, emailed_at__isnull=True).update(
            emailed_at=now
        )
        if not claimed:
            continue
        body = f"{message.body}\n\nOpen: {_absolute(message.link)}\n\n" + (
            "This message names no patient. Sign in to RecordRoom to see the records."
        )
        try:
            send_mail(message.subject, body, None, [message.recipient.email])
        except Exception:  # noqa: BLE001 - any transport failure: keep the message, retry later
            InboxMessage.objects.filter(pk=message.pk).update(emailed_at=None)
            log.warning("completion reminder e-mail failed for message %s", message.pk)
            failed += 1
        else:
            sent += 1
    return sent, failed


def send_reminders(*, now: dt.datetime | None = None) -> dict:
    """Create today's reminder messages and e-mail them. Returns the counts: messages
    created, e-mails sent, skipped (already sent), e-mail failures, and messages by kind."""
    now = now or clock.now()
    today = timezone.localdate(now)
    drafts = _drafts(now)
    existing = _existing_keys(list(drafts))
    counts = {
        "messages": 0,
        "emails": 0,
        "skipped": 0,
        "email_failures": 0,
        "reminders": 0,
        "delinquent": 0,
        "reassign": 0,
    }
    by_kind = {KIND_REMINDER: "reminders", KIND_DELINQUENT: "delinquent", KIND_REASSIGN: "reassign"}
    with transaction.atomic():
        for key in sorted(drafts):
            if key in existing:
                counts["skipped"] += 1
                continue
            draft = drafts[key]
            subject, body, link = draft.render(today)
            try:
                with transaction.atomic():
                    InboxMessage.objects.create(
                        recipient_id=draft.recipient_id,
                        kind=draft.kind,
                        subject=subject[:200],
                        body=body,
                        link=link,
                        dedupe_key=key,
                        created_at=now,
                    )
            except IntegrityError:
                # Another run created it between the look-up and here.
                counts["skipped"] += 1
                continue
            counts["messages"] += 1
            counts[by_kind[draft.kind]] += 1
        record_event(
            None,
            Action.CREATE,
            purpose=Purpose.OPERATIONS,
            object_type=OBJECT_TYPE,
            reason="chart completion reminders",
            detail={k: counts[k] for k in ("messages", "skipped", *by_kind.values())},
        )
    counts["emails"], counts["email_failures"] = _email_pending(now)
    if counts["emails"] or counts["email_failures"]:
        record_event(
            None,
            Action.CREATE,
            purpose=Purpose.OPERATIONS,
            object_type=OBJECT_TYPE,
            reason="chart completion reminder e-mails",
            detail={"emails": counts["emails"], "email_failures": counts["email_failures"]},
        )
    return counts
