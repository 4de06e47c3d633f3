"""The in-app inbox: each user reads and marks only their own reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from completion import inbox
from completion.models import InboxMessage
from recordroom.testing import sign_in

pytestmark = pytest.mark.django_db
AT = dt.datetime(2025, 6, 17, 11, 0, tzinfo=dt.UTC)


def message(user, key: str, *, read=False, **fields) -> InboxMessage:
    return InboxMessage.objects.create(
        recipient=user,
        kind=fields.pop("kind", "completion_reminder"),
        subject=fields.pop("subject", f"Chart completion: reminder {key}"),
        body=fields.pop("body", "You have 2 deficiencies on 1 record to complete or sign."),
        link="/completion/mine/",
        dedupe_key=key,
        created_at=fields.pop("created_at", AT),
        read_at=AT if read else None,
        **fields,
    )


@pytest.fixture
def mail(personas):
    return {
        "mine": message(personas.clinician, "k:mine"),
        "older": message(personas.clinician, "k:older", created_at=AT - dt.timedelta(days=2)),
        "read": message(personas.clinician, "k:read", read=True),
        "theirs": message(personas.other_clinician, "k:theirs", subject="Olga's reminder"),
    }


# --- access and actions --------------------------------------------------------------------


def test_my_inbox_holds_only_my_messages_newest_first(personas, mail):
    keys = [m.dedupe_key for m in inbox.my_inbox(personas.clinician)]
    assert keys == ["k:read", "k:mine", "k:older"]  # the same minute: the later one first
    assert [m.dedupe_key for m in inbox.my_inbox(personas.clinician, unread_only=True)] == [
        "k:mine",
        "k:older",
    ]
    assert inbox.unread_count(personas.clinician) == 2


def test_a_user_without_a_role_has_no_inbox_and_it_is_audited(personas, audit_rows):
    with pytest.raises(AccessDenied):
        inbox.my_inbox(personas.no_role)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.no_role and denied.object_type == "completion.inbox_message"
    assert inbox.unread_count(personas.no_role) == 0
    with pytest.raises(AccessDenied):
        inbox.my_inbox(personas.integration)


def test_marking_read_is_audited_and_changes_only_unread_messages(personas, mail, audit_rows):
    assert (
        inbox.do_mark_read(personas.clinician, ["k:mine", "k:read"], acting_user=personas.clinician)
        == 1
    )
    mail["mine"].refresh_from_db()
    mail["read"].refresh_from_db()
    assert mail["mine"].read_at is not None and mail["read"].read_at == AT
    (event,) = audit_rows(action=Action.UPDATE, object_type="completion.inbox_message")
    assert event.outcome == Outcome.ALLOWED and event.detail == {"marked": 1, "all": False}


def test_marking_all_read(personas, mail):
    assert inbox.do_mark_read(personas.clinician, acting_user=personas.clinician) == 2
    assert inbox.unread_count(personas.clinician) == 0
    assert InboxMessage.objects.get(dedupe_key="k:theirs").read_at is None


def test_another_users_message_cannot_be_marked_and_nothing_changes(personas, mail):
    with pytest.raises(ValidationError) as error:
        inbox.do_mark_read(
            personas.clinician, ["k:mine", "k:theirs"], acting_user=personas.clinician
        )
    assert "No such message" in str(error.value)
    assert InboxMessage.objects.filter(read_at__isnull=True).count() == 3


def test_nobody_marks_another_users_inbox(personas, mail, audit_rows):
    with pytest.raises(AccessDenied):
        inbox.do_mark_read(personas.other_clinician, acting_user=personas.clinician)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.clinician
    assert inbox.unread_count(personas.other_clinician) == 1


def test_an_empty_choice_is_refused(personas, mail):
    with pytest.raises(ValidationError, match="at least one"):
        inbox.do_mark_read(personas.clinician, ["  "], acting_user=personas.clinician)


# --- the pages ------------------------------------------------------------------------------


def test_the_inbox_page_requires_login(client, db):
    response = client.get("/completion/inbox/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_clinician_reads_their_inbox(client, personas, mail):
    sign_in(client, personas.clinician)
    response = client.get("/completion/inbox/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "reminder k:mine" in page and "reminder k:older" in page
    assert "Olga" not in page
    assert "2 unread" in page
    unread = client.get("/completion/inbox/?show=unread").content.decode()
    assert "reminder k:read" not in unread


def test_an_administrator_has_an_inbox_too(client, personas):
    message(personas.administrator, "k:admin", kind="completion_reassign")
    sign_in(client, personas.administrator)
    assert b"reminder k:admin" in client.get("/completion/inbox/").content


def test_a_user_without_a_role_is_refused_the_page_and_it_is_audited(client, personas, audit_rows):
    sign_in(client, personas.no_role)
    assert client.get("/completion/inbox/").status_code == 403
    # The role check in front of every page refuses (and audits) before the inbox does.
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.no_role


def test_mark_read_refuses_get(client, personas, mail):
    sign_in(client, personas.clinician)
    assert client.get("/completion/inbox/read/").status_code == 405


def test_mark_read_requires_login(client, mail):
    response = client.post("/completion/inbox/read/", {"all": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert InboxMessage.objects.filter(read_at__isnull=True).count() == 3


def test_mark_read_denies_a_user_without_a_role_and_audits_it(client, personas, audit_rows):
    sign_in(client, personas.no_role)
    assert client.post("/completion/inbox/read/", {"all": "1"}).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.no_role


def test_a_clinician_marks_one_message_read(client, personas, mail):
    sign_in(client, personas.clinician)
    response = client.post("/completion/inbox/read/", {"message": "k:mine"})
    assert response.status_code == 302 and response["Location"] == "/completion/inbox/"
    assert InboxMessage.objects.get(dedupe_key="k:mine").read_at is not None
    assert InboxMessage.objects.get(dedupe_key="k:older").read_at is None


def test_a_clinician_marks_everything_read(client, personas, mail):
    sign_in(client, personas.clinician)
    client.post("/completion/inbox/read/", {"all": "1"})
    assert inbox.unread_count(personas.clinician) == 0
    assert InboxMessage.objects.get(dedupe_key="k:theirs").read_at is None


def test_a_key_of_someone_elses_message_is_refused_with_a_message(client, personas, mail):
    sign_in(client, personas.clinician)
    response = client.post("/completion/inbox/read/", {"message": "k:theirs"}, follow=True)
    assert b"No such message in your inbox" in response.content
    assert InboxMessage.objects.get(dedupe_key="k:theirs").read_at is None


def test_the_inbox_pages_through_many_messages(client, personas):
    for n in range(30):
        message(personas.clinician, f"k:{n:02d}", created_at=AT + dt.timedelta(minutes=n))
    sign_in(client, personas.clinician)
    first = client.get("/completion/inbox/").content.decode()
    assert "reminder k:29" in first and "reminder k:04" not in first
    second = client.get("/completion/inbox/?page=2").content.decode()
    assert "reminder k:04" in second
