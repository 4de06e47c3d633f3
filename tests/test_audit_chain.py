"""The audit trail is append-only in the database and hash-chained (ARCHITECTURE rule 2)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.actions import record_event, record_events
from audit.models import GENESIS_HASH, Action, AuditEvent, Outcome
from audit.verify import verify_chain


def _events(n):
    return [
        record_event(None, Action.VIEW, username=f"user{i}", object_type="test", object_id=str(i))
        for i in range(n)
    ]


def _tamper(sql, params):
    """Change a row behind the triggers' back, the way an attacker with database access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_auditevent_no_update")
            cursor.execute("DROP TRIGGER audit_auditevent_no_delete")
            cursor.execute(sql, params)
        else:
            # A superuser session can switch ordinary triggers off for itself.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql, params)
            cursor.execute("SET session_replication_role = origin")


@pytest.mark.django_db
def test_each_row_links_to_the_previous_one():
    first, second, third = _events(3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.row_hash
    assert third.prev_hash == second.row_hash
    assert [first.seq, second.seq, third.seq] == [first.seq, first.seq + 1, first.seq + 2]
    assert len(third.row_hash) == 64


@pytest.mark.django_db
def test_verify_passes_on_an_intact_trail():
    _events(5)
    result = verify_chain()
    assert result.ok
    assert result.rows_checked == AuditEvent.objects.count()


@pytest.mark.django_db
def test_events_recorded_together_chain_as_one_by_one(personas):
    before = _events(1)[0]
    batch = record_events(
        personas.integration,
        [
            {"action": Action.CREATE, "object_type": "import_unit", "object_id": str(i)}
            for i in range(3)
        ]
        + [{"action": Action.VIEW, "outcome": Outcome.DENIED, "detail": {"n": 1}}],
    )
    after = _events(1)[0]
    assert [e.seq for e in batch] == [
        before.seq + 1,
        before.seq + 2,
        before.seq + 3,
        before.seq + 4,
    ]
    assert batch[0].prev_hash == before.row_hash and after.prev_hash == batch[-1].row_hash
    stored = AuditEvent.objects.filter(seq__in=[e.seq for e in batch]).order_by("seq")
    assert [e.actor_username for e in stored] == [personas.integration.username] * 4
    assert [e.outcome for e in stored] == [Outcome.ALLOWED] * 3 + [Outcome.DENIED]
    assert verify_chain().ok
    with pytest.raises(TypeError, match="unknown keys"):
        record_events(None, [{"action": Action.VIEW, "patient": "x"}])


@pytest.mark.django_db
def test_the_database_refuses_update():
    (event,) = _events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")


@pytest.mark.django_db
def test_the_database_refuses_delete():
    (event,) = _events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


@pytest.mark.django_db
def test_the_database_refuses_raw_sql_update():
    _events(1)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'allowed'")


@pytest.mark.django_db
def test_verify_names_the_row_altered_behind_the_triggers_back():
    events = _events(6)
    target = events[3]
    _tamper("UPDATE audit_auditevent SET outcome = %s WHERE seq = %s", [Outcome.DENIED, target.seq])
    result = verify_chain(chunk_size=2)
    assert not result.ok
    assert result.broken_seq == target.seq
    assert "content" in result.problem


@pytest.mark.django_db
def test_verify_names_a_deleted_row():
    events = _events(4)
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [events[1].seq])
    result = verify_chain()
    assert result.broken_seq == events[1].seq
    assert "missing" in result.problem


@pytest.mark.django_db
def test_verify_notices_a_rehashed_row():
    """Recomputing the altered row's own hash still breaks the next row's link."""
    events = _events(3)
    altered = events[1]
    altered.reason = "forged"
    new_hash = altered.compute_hash()
    _tamper(
        "UPDATE audit_auditevent SET reason = %s, row_hash = %s WHERE seq = %s",
        ["forged", new_hash, altered.seq],
    )
    result = verify_chain()
    assert result.broken_seq == events[2].seq
    assert "link" in result.problem


@pytest.mark.django_db
def test_verify_notices_a_truncated_tail():
    events = _events(3)
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [events[-1].seq])
    result = verify_chain()
    assert not result.ok


@pytest.mark.django_db
def test_the_command_reports_intact_and_broken(capsys):
    events = _events(3)
    call_command("audit", "verify")
    assert "intact" in capsys.readouterr().out
    _tamper("UPDATE audit_auditevent SET object_id = 'x' WHERE seq = %s", [events[0].seq])
    with pytest.raises(CommandError, match=f"BROKEN at row {events[0].seq}"):
        call_command("audit", "verify")


@pytest.mark.django_db
def test_an_event_written_in_a_rolled_back_transaction_leaves_no_trace():
    """The audit row shares the transaction of the access it records."""
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(None, Action.VIEW, username="x")
        raise RuntimeError("the access failed")
    assert AuditEvent.objects.count() == before
    assert verify_chain().ok
