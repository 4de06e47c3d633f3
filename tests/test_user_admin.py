"""Administrators manage users and roles from the UI; every change is audited."""

import pytest
from django.contrib.auth import get_user_model

from accounts.roles import role_codes
from audit.models import Action, Outcome
from recordroom.testing import sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

NEW_USER = {
    "username": "nadia.new",
    "first_name": "Nadia",
    "last_name": "Newhire",
    "email": "nadia@example.invalid",
    "roles": ["coder", "roi_specialist"],
    "password": "a-long-and-unusual-passphrase",
}


@pytest.fixture
def admin_client(client, personas):
    return sign_in(client, personas.administrator, sudo=True)


def test_an_administrator_creates_a_user_with_roles(admin_client, audit_rows):
    response = admin_client.post("/accounts/users/new/", NEW_USER)
    assert response.status_code == 302
    user = User.objects.get(username="nadia.new")
    assert role_codes(user) == {"coder", "roi_specialist"}
    assert user.password.startswith(("md5$", "argon2"))
    (created,) = audit_rows(action=Action.ACCOUNT_CHANGE)
    assert created.object_id == str(user.public_id)
    (granted,) = audit_rows(action=Action.PERMISSION_CHANGE)
    assert granted.detail == {"roles_added": ["coder", "roi_specialist"], "roles_removed": []}


def test_a_weak_password_is_refused_and_nothing_is_stored(admin_client, audit_rows):
    response = admin_client.post("/accounts/users/new/", {**NEW_USER, "password": "password"})
    assert response.status_code == 400
    assert b"too short" in response.content or b"too common" in response.content
    assert not User.objects.filter(username="nadia.new").exists()
    assert not audit_rows(action=Action.ACCOUNT_CHANGE)


def test_a_duplicate_user_name_is_refused(admin_client, personas):
    response = admin_client.post("/accounts/users/new/", {**NEW_USER, "username": "TINA.TECH"})
    assert response.status_code == 400
    assert b"taken" in response.content


def test_an_unknown_role_is_refused(admin_client):
    response = admin_client.post("/accounts/users/new/", {**NEW_USER, "roles": ["superuser"]})
    assert response.status_code == 400
    assert not User.objects.filter(username="nadia.new").exists()


def test_html_and_sql_in_names_are_stored_as_text_and_escaped(admin_client):
    hostile = {
        **NEW_USER,
        "first_name": "<img src=x onerror=alert(1)>",
        "last_name": "O'Brien'); DROP TABLE accounts_user;--",
    }
    assert admin_client.post("/accounts/users/new/", hostile).status_code == 302
    user = User.objects.get(username="nadia.new")
    assert user.last_name == hostile["last_name"]
    page = admin_client.get("/accounts/users/").content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_administrator_changes_roles_and_it_is_audited(admin_client, personas, audit_rows):
    user = personas.coder
    response = admin_client.post(
        f"/accounts/users/{user.public_id}/",
        {
            "first_name": "Cora",
            "last_name": "Coder",
            "email": "",
            "roles": ["roi_specialist"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert role_codes(User.objects.get(pk=user.pk)) == {"roi_specialist"}
    (event,) = audit_rows(action=Action.PERMISSION_CHANGE)
    assert event.detail == {"roles_added": ["roi_specialist"], "roles_removed": ["coder"]}
    assert event.actor == personas.administrator


def test_an_administrator_cannot_remove_their_own_roles(admin_client, personas):
    me = personas.administrator
    response = admin_client.post(
        f"/accounts/users/{me.public_id}/",
        {"first_name": "A", "last_name": "B", "email": "", "roles": ["coder"], "is_active": "on"},
    )
    assert response.status_code == 400
    assert role_codes(User.objects.get(pk=me.pk)) == {"him_administrator"}


def test_an_unknown_user_id_is_404(admin_client):
    assert (
        admin_client.get("/accounts/users/00000000-0000-0000-0000-000000000000/").status_code == 404
    )


@pytest.mark.parametrize("path", ["/accounts/users/", "/accounts/users/new/"])
def test_it_requires_login(client, path, db):
    assert client.get(path)["Location"].startswith("/accounts/login/")


def test_it_refuses_get_on_mutations(admin_client, personas):
    user = personas.coder
    assert admin_client.get(f"/accounts/users/{user.public_id}/unlock/").status_code == 405
    assert admin_client.get(f"/accounts/users/{user.public_id}/reset-mfa/").status_code == 405


@pytest.mark.parametrize(
    "persona", ["technician", "coder", "clinician", "patient", "roi_specialist"]
)
def test_it_denies_other_roles_and_audits(client, personas, persona, audit_rows):
    client.force_login(getattr(personas, persona))
    target = personas.coder
    for path, method in [
        ("/accounts/users/", "get"),
        ("/accounts/users/new/", "post"),
        (f"/accounts/users/{target.public_id}/", "get"),
        (f"/accounts/users/{target.public_id}/unlock/", "post"),
    ]:
        response = getattr(client, method)(path, NEW_USER if method == "post" else None)
        assert response.status_code == 403, path
        assert b"Not allowed" in response.content
    denials = audit_rows(outcome=Outcome.DENIED)
    assert len(denials) == 4
    assert all(event.actor == getattr(personas, persona) for event in denials)
    assert not User.objects.filter(username="nadia.new").exists()


def test_the_privacy_officer_sees_users_but_cannot_change_them(client, personas):
    sign_in(client, personas.privacy_officer, sudo=True)
    assert client.get("/accounts/users/").status_code == 200
    assert client.get(f"/accounts/users/{personas.coder.public_id}/").status_code == 403


def test_users_list_query_count_is_flat(admin_client, django_assert_max_num_queries):
    UserFactory.create_batch(30, roles=["coder"])
    with django_assert_max_num_queries(20):
        assert admin_client.get("/accounts/users/").status_code == 200


def test_a_user_changes_their_own_password(client, personas, login, audit_rows):
    login(personas.coder)
    response = client.post(
        "/accounts/security/",
        {
            "current_password": "correct-horse-battery-staple-7",
            "new_password": "another-long-passphrase-9",
            "confirm_password": "another-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200, "still signed in after the change"
    assert audit_rows(action=Action.ACCOUNT_CHANGE, reason="password changed")
    personas.coder.refresh_from_db()
    assert personas.coder.check_password("another-long-passphrase-9")


def test_a_wrong_current_password_is_refused(client, personas, login):
    login(personas.coder)
    response = client.post(
        "/accounts/security/",
        {
            "current_password": "nope",
            "new_password": "another-long-passphrase-9",
            "confirm_password": "another-long-passphrase-9",
        },
    )
    assert response.status_code == 400
    personas.coder.refresh_from_db()
    assert personas.coder.check_password("correct-horse-battery-staple-7")


def test_user_administration_asks_for_the_password_again(client, personas, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get("/accounts/users/new/")
    assert response.status_code == 302
    assert response["Location"].startswith(
        "/accounts/confirm-password/?next=%2Faccounts%2Fusers%2Fnew%2F"
    )
    wrong = client.post(
        "/accounts/confirm-password/", {"password": "nope", "next": "/accounts/users/new/"}
    )
    assert wrong.status_code == 400
    assert audit_rows(action=Action.SECURITY, outcome=Outcome.DENIED)
    right = client.post(
        "/accounts/confirm-password/",
        {"password": "correct-horse-battery-staple-7", "next": "/accounts/users/new/"},
    )
    assert right["Location"] == "/accounts/users/new/"
    assert client.get("/accounts/users/new/").status_code == 200


def test_password_confirmation_expires(client, personas, settings):
    import time_machine

    settings.SUDO_MINUTES = 10
    settings.SESSION_IDLE_MINUTES = 60
    with time_machine.travel("2026-04-01 09:00Z", tick=False):
        sign_in(client, personas.administrator)
        client.post("/accounts/confirm-password/", {"password": "correct-horse-battery-staple-7"})
        assert client.get("/accounts/users/new/").status_code == 200
    with time_machine.travel("2026-04-01 09:11Z", tick=False):
        assert client.get("/accounts/users/new/").status_code == 302
