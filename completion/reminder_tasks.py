"""The daily reminder run as a background task for the ``recordroom worker``.

``send_completion_reminders`` runs once. ``daily_completion_reminders`` runs and then
queues itself for the next day at ``COMPLETION_REMINDER_HOUR`` (local time, 7 unless
set), so one ``enqueue()`` after installation keeps reminders going without cron; a
second chain is not started while one is waiting. Either way the run is idempotent:
a reminder already sent is not sent again.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from completion.reminders import send_reminders
from recordroom import clock


def reminder_hour() -> int:
    return int(getattr(settings, "COMPLETION_REMINDER_HOUR", 7))


def next_run_after(now: dt.datetime) -> dt.datetime:
    """The next local ``reminder_hour`` o'clock after ``now`` (a wall-clock time, so it
    stays at 7:00 across daylight-saving changes)."""
    tz = timezone.get_current_timezone()
    local = timezone.localtime(now, tz)
    day = local.date()
    if local.hour >= reminder_hour():
        day += dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(reminder_hour())), tz)


@task()
def send_completion_reminders() -> dict:
    """Send the chart-completion reminders due now."""
    return send_reminders()


def _already_scheduled(backend, now: dt.datetime) -> bool:
    """A later run already waits in the database queue."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult, get_date_max

    if not isinstance(backend, DatabaseBackend):
        return False
    return (
        DBTaskResult.objects.filter(
            task_path=daily_completion_reminders.module_path,
            status=TaskResultStatus.READY,
            run_after__gt=now,
        )
        .exclude(run_after=get_date_max())
        .exists()
    )


def schedule_next(now: dt.datetime | None = None):
    """Queue the next daily run, unless the backend cannot defer (tests run tasks
    immediately) or a run is already waiting. Returns the queued result or None."""
    now = now or clock.now()
    backend = daily_completion_reminders.get_backend()
    if not getattr(backend, "supports_defer", False):
        return None
    if _already_scheduled(backend, now):
        return None
    return daily_completion_reminders.using(run_after=next_run_after(now)).enqueue()


@task()
def daily_completion_reminders() -> dict:
    """Analyse every open record (deficiencies that fell due since yesterday), send
    today's reminders, then queue tomorrow's run."""
    from completion.analysis import sweep_open_records

    swept = sweep_open_records()
    counts = send_reminders()
    schedule_next()
    return {**counts, "analysed": swept["records"], "opened": swept["opened"]}
