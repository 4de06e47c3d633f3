"""What each role sees in a real browser: navigation, refusals, the audit of refusals,
multi-factor log-in, sign-out, a tablet-width layout and keyboard access."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DEMO_PASSWORD = "recordroom-demo-2026"  # the published demo password (recordroom/demo.py)
LOGIN_URL = re.compile(r"/accounts/login/")
NO_HORIZONTAL_OVERFLOW = (
    "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
)


def sign_in(page, username, password=DEMO_PASSWORD):
    """Submit the log-in form and wait for the page it leads to."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def sign_in_with_new_authenticator(page, username):
    """Password, then the first-log-in enrolment: read the key off the page, answer with
    the current TOTP code."""
    sign_in(page, username)
    expect(page).to_have_url(re.compile(r"/accounts/mfa/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator")
    secret = page.locator("code.secret[data-secret]").inner_text().strip()
    token = f"{TOTP(base64.b32decode(secret)).token():06d}"
    page.fill("input[name=token]", token)
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm and sign in").click()


def sign_out(page):
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator(".messages")).to_contain_text("You are signed out.")


def nav(page, name):
    return page.locator(f'nav[aria-label="Main"] a[data-nav="{name}"]')


def test_technician_sees_their_menu_is_refused_the_audit_trail_and_signs_out(page, screenshot):
    response = page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    assert response.status == 200
    expect(page).to_have_title(re.compile(r"^Sign in"))
    screenshot(page, "login")

    sign_in(page, "tech")
    expect(page).not_to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tessa")
    expect(page.locator(".topbar .role-badge")).to_have_text(["HIM technician"])
    expect(nav(page, "home")).to_have_text("Home")
    expect(nav(page, "home")).to_have_attribute("aria-current", "page")
    expect(nav(page, "accounts:security")).to_have_text("My account")
    expect(nav(page, "audit:trail")).to_have_count(0)
    expect(nav(page, "accounts:users")).to_have_count(0)
    screenshot(page, "home-technician")

    response = page.goto("/audit/")
    assert response.status == 403
    expect(page).to_have_title(re.compile(r"^Not allowed"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.locator("#trail")).to_have_count(0)
    expect(nav(page, "home")).to_be_visible()  # still signed in, still has a way home

    sign_out(page)
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)  # the session is really gone


def test_privacy_officer_enrols_mfa_and_finds_the_refusal_in_the_audit_trail(new_page, screenshot):
    # A technician is refused the audit trail (the previous test does the same; doing it
    # here too keeps this test independent of order and -k selection).
    tech = new_page()
    sign_in(tech, "tech")
    assert tech.goto("/audit/").status == 403

    page = new_page()
    sign_in_with_new_authenticator(page, "privacy")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Priya")
    expect(page.locator(".topbar .role-badge")).to_have_text(["Privacy officer"])
    expect(nav(page, "audit:trail")).to_have_text("Audit trail")
    screenshot(page, "home-privacy-officer")

    nav(page, "audit:trail").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    expect(page.locator("#trail tbody tr").first).to_be_visible()
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the audit trail is wider than the window"
    screenshot(page, "audit-trail")

    page.get_by_label("User name").fill("tech")
    page.locator("select[name=outcome]").select_option("denied")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"username=tech.*outcome=denied"))  # htmx pushed it
    rows = page.locator("#trail tbody tr")
    expect(rows.first).to_have_class(re.compile(r"\bdenied\b"))
    count = rows.count()
    assert count >= 1
    for i in range(count):
        cells = rows.nth(i).locator("td")
        expect(cells.nth(2)).to_contain_text("tech")
        expect(cells.nth(4)).to_have_text("Denied")
    newest = rows.first.locator("td")
    expect(newest.nth(7)).to_contain_text("audit.trail")
    expect(newest.nth(8)).to_contain_text("lacks permission audit.view_trail")
    expect(newest.nth(9)).to_have_text("127.0.0.1")
    expect(page.locator("#trail-results .count")).to_contain_text(f"{count} event")

    # Reading the trail is itself on the trail.
    page.get_by_label("User name").fill("privacy")
    page.locator("select[name=action]").select_option("search")
    page.locator("select[name=outcome]").select_option("")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"username=privacy.*action=search.*outcome=(&|$)"))
    own = page.locator("#trail tbody tr").first.locator("td")
    expect(own.nth(3)).to_have_text("Search")
    expect(own.nth(4)).to_have_text("Allowed")
    expect(own.nth(7)).to_contain_text("audit.trail")

    sign_out(page)


def test_a_wrong_password_is_refused_with_a_generic_message(page):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "coder")
    page.fill("input[name=password]", "not-the-password-1")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    assert navigation.value.status == 400
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    expect(page.locator("input[name=password]")).to_have_value("")
    expect(page.locator(".topbar button", has_text="Sign out")).to_have_count(0)


def test_a_tablet_width_keeps_the_navigation_and_does_not_scroll_sideways(new_page):
    page = new_page(width=900, height=1000)
    page.goto("/accounts/login/")
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the sign-in page is wider than a tablet"

    sign_in(page, "tech")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    for name in ("home", "accounts:security"):
        expect(nav(page, name)).to_be_visible()
        assert nav(page, name).bounding_box()["x"] + 10 < 900
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the home page is wider than a tablet"


def test_the_first_tab_stop_is_the_skip_link(page):
    sign_in(page, "tech")
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text("Skip to content")
    expect(focused).to_have_attribute("href", "#main")
    expect(focused).to_be_in_viewport()  # shown once focused, not left off-screen
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.locator("main#main")).to_be_focused()
