"""Each role's home page and navigation."""

import pytest

from audit.models import Action, Outcome
from recordroom.testing import sign_in

pytestmark = pytest.mark.django_db


def _nav(response):
    return [item["name"] for item in response.context["nav_items"]]


@pytest.mark.parametrize(
    "persona, nav, panel",
    [
        (
            "technician",
            [
                "home",
                "patients:search",
                "patients:register",
                "completion:dashboard",
                "completion:quality_audits",
                "coding:lookup",
                "reports:dashboard",
                "accounts:security",
            ],
            "Documents to index",
        ),
        (
            "administrator",
            [
                "home",
                "patients:search",
                "patients:register",
                "completion:dashboard",
                "completion:rules",
                "completion:quality_audits",
                "completion:inbox",
                "coding:dnfb",
                "coding:productivity",
                "coding:reviews",
                "coding:lookup",
                "roi:queue",
                "roi:dashboard",
                "roi:disclosures",
                "roi:amendments",
                "reports:dashboard",
                "imports:errors",
                "clients:list",
                "accounts:users",
                "accounts:security",
            ],
            "Locked accounts",
        ),
        (
            "coder",
            [
                "home",
                "patients:search",
                "completion:dashboard",
                "coding:queue",
                "coding:queries",
                "coding:dnfb",
                "coding:productivity",
                "coding:lookup",
                "reports:dashboard",
                "accounts:security",
            ],
            "Coding work queue",
        ),
        (
            "roi_specialist",
            [
                "home",
                "patients:search",
                "roi:queue",
                "roi:dashboard",
                "roi:disclosures",
                "roi:amendments",
                "reports:dashboard",
                "accounts:security",
            ],
            "Requests due soon",
        ),
        (
            "clinician",
            [
                "home",
                "patients:search",
                "completion:queue",
                "completion:inbox",
                "coding:lookup",
                "accounts:security",
            ],
            "Records to complete",
        ),
        (
            "privacy_officer",
            [
                "home",
                "patients:search",
                "patients:btg_queue",
                "roi:dashboard",
                "roi:disclosures",
                "reports:dashboard",
                "audit:trail",
                "accounts:users",
                "accounts:security",
            ],
            "Recent refusals",
        ),
        ("patient", ["home", "accounts:security"], "My requests"),
    ],
)
def test_each_role_sees_its_navigation_and_work(client, personas, persona, nav, panel):
    sign_in(client, getattr(personas, persona))
    response = client.get("/")
    assert response.status_code == 200
    assert _nav(response) == nav
    assert panel.encode() in response.content


def test_the_privacy_officer_sees_recent_refusals(client, personas):
    client.force_login(personas.coder)
    client.get("/audit/")
    client.logout()
    sign_in(client, personas.privacy_officer)
    response = client.get("/")
    assert b"cora.coder" in response.content


def test_the_administrator_sees_locked_accounts(client, personas, settings):
    settings.LOCKOUT_THRESHOLD = 1
    client.post("/accounts/login/", {"username": "cora.coder", "password": "wrong-password-1"})
    sign_in(client, personas.administrator)
    assert b"cora.coder" in client.get("/").content


def test_a_user_without_a_role_sees_no_page_and_it_is_audited(client, personas, audit_rows):
    client.force_login(personas.no_role)
    response = client.get("/")
    assert response.status_code == 403
    assert b"no role" in response.content
    (event,) = audit_rows(outcome=Outcome.DENIED, action=Action.VIEW)
    assert event.actor == personas.no_role


def test_a_system_account_sees_no_page(client, personas):
    client.force_login(personas.integration)
    assert client.get("/").status_code == 403


def test_static_files_are_served_by_the_app(client, db):
    response = client.get("/static/recordroom/recordroom.css")
    assert response.status_code == 200
    response = client.get("/static/django_htmx/htmx-2.min.js")
    assert response.status_code == 200


def test_the_health_check_is_open(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_no_template_or_asset_loads_from_another_site():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""(src|href)=["']?(https?:)?//""")
    offenders = [
        str(path) for path in root.glob("*/templates/**/*.html") if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_a_designated_reviewer_alone_has_a_home_with_the_denial_reviews(client, personas):
    from accounts.roles import Role
    from recordroom.testing import make_user, sign_in

    user = make_user("only.reviewer", Role.DENIAL_REVIEWER)
    user.facilities.add(personas.facility)
    sign_in(client, user)
    home = client.get("/")
    assert home.status_code == 200
    assert "/roi/denial-reviews/" in home.content.decode()
