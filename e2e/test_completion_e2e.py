"""Chart completion in a real browser, on the demo department: Dr. Claire Huang signs a
deficient discharge summary from her work queue and the record becomes complete; she
signs her verbal and telephone orders in bulk; the HIM analyst's dashboard and the
rules list, for the screenshots of docs/completion.md.

The server runs no worker beside it (make run does): the analysis a signature queues is
run here with `recordroom worker --batch`, as the worker would within seconds."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from recordroom.testing import run_recordroom

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DEMO_PASSWORD = "recordroom-demo-2026"  # the published demo password (recordroom/demo.py)
ROOT = Path(__file__).resolve().parent.parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NO_HORIZONTAL_OVERFLOW = (
    "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
)


# --- helpers ------------------------------------------------------------------------------


def sign_in(page, username, password=DEMO_PASSWORD):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def sign_in_with_mfa(page, username, authenticators):
    """Password, then the second factor: enrol an authenticator (its key kept in the
    session's registry) or answer with the key enrolled earlier in this session."""
    sign_in(page, username)
    expect(page).to_have_url(re.compile(r"/accounts/mfa/"))
    if page.locator("code.secret[data-secret]").count():
        key = page.locator("code.secret[data-secret]").inner_text().strip()
        last_step, button = -1, "Confirm and sign in"
    else:
        key, last_step = authenticators[username]
        button = "Verify"
    totp = TOTP(base64.b32decode(key))
    if totp.t() <= last_step:  # a code is accepted once: use the next one
        totp.drift = last_step + 1 - totp.t()
    authenticators[username] = (key, totp.t())
    page.fill("input[name=token]", f"{totp.token():06d}")
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/(mfa|login)/"))


def nav(page, name):
    return page.locator(f'nav[aria-label="Main"] a[data-nav="{name}"]')


@pytest.fixture
def run_worker(server_env):
    """Run the queued background work (the analyses) once, as `recordroom worker` does."""

    def _run():
        run_recordroom(server_env, "worker", "--batch", "--interval", "0.1", timeout=300)

    return _run


def queue_rows(page):
    return page.locator("main table tbody tr")


def open_my_deficiencies(page):
    with page.expect_navigation():
        nav(page, "completion:queue").click()
    expect(page).to_have_url(re.compile(r"/completion/mine/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My deficiencies")


def find_summary_to_sign(page) -> tuple[str, str]:
    """In the queue, an unsigned discharge summary whose record has no other open
    deficiency: (its deficiency's details link, its record's link)."""
    rows = queue_rows(page).filter(has_text="Unsigned").filter(has_text="Discharge summary")
    links = [
        rows.nth(i).get_by_role("link", name="Details").get_attribute("href")
        for i in range(rows.count())
    ]
    assert links, "no unsigned discharge summary in the clinician's queue"
    queue_url = page.url
    for link in links:
        page.goto(link)
        facts = page.locator("dl.facts")
        record_text = facts.locator("dt:text-is('Record') + dd").inner_text()
        if re.fullmatch(r"Incomplete · 1 open", record_text.strip()):
            record_link = page.get_by_role("link", name="The record").get_attribute("href")
            page.goto(queue_url)
            return link, record_link
    raise AssertionError("no discharge summary whose signature is all its record lacks")


# --- the clinician ------------------------------------------------------------------------


def test_a_clinician_signs_a_deficient_discharge_summary_and_the_record_becomes_complete(
    page, screenshot, run_worker
):
    sign_in(page, "clinician")
    expect(nav(page, "completion:queue")).to_have_text("My deficiencies")
    open_my_deficiencies(page)
    expect(page.locator("main")).to_contain_text("on delinquent record")
    expect(queue_rows(page).first).to_contain_text("delinquent")
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the queue is wider than the window"
    screenshot(page, "completion-queue")

    details, record = find_summary_to_sign(page)
    assert re.search(rf"/completion/encounters/{UUID}/$", record)
    row = queue_rows(page).filter(has=page.locator(f'a[href="{details}"]'))
    expect(row).to_have_count(1)

    # One click from the queue opens the summary's signing page.
    with page.expect_navigation():
        row.get_by_role("link", name="Open and sign").click()
    expect(page).to_have_url(re.compile(rf"/documents/{UUID}/sign/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign: Discharge summary")
    page.get_by_label("Your password").fill("not-my-password-1")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign", exact=True).click()
    assert navigation.value.status == 400
    expect(page.get_by_text("The password is not correct")).to_be_visible()
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/documents/{UUID}/$"))
    expect(page.locator(".messages")).to_contain_text("Version 1 signed.")
    expect(page.locator(".doc-meta .status-badge")).to_have_text("Final (signed)")

    # The signature queued the record's analysis; the worker runs it.
    run_worker()
    page.goto(record)
    facts = page.locator("dl.facts")
    expect(facts.locator("dt:text-is('Record') + dd")).to_have_text("Complete")
    expect(facts.locator("dt:text-is('Completed')")).to_be_visible()
    expect(page.locator("main table tbody")).to_contain_text("Completed")
    expect(page.locator("main table tbody")).to_contain_text("Discharge summary")

    # Back in the queue, the summary is gone.
    open_my_deficiencies(page)
    expect(page.locator(f'main a[href="{details}"]')).to_have_count(0)


def test_a_clinician_signs_her_verbal_and_telephone_orders_in_bulk(page):
    sign_in(page, "clinician")
    open_my_deficiencies(page)
    expect(queue_rows(page).filter(has_text="Orders")).to_have_count(3)
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile(r"Sign verbal and telephone orders")).click()
    expect(page).to_have_url(re.compile(r"/completion/mine/sign/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign verbal and telephone orders")
    orders = page.locator("main section.card:has(input[name=documents])")
    expect(orders).to_have_count(4)
    expect(orders.locator("pre.doc-body").first).to_contain_text("Read back and verified.")
    expect(page.locator("main")).to_contain_text("Verbal order")
    expect(page.locator("main")).to_contain_text("Telephone order")

    # A wrong password signs nothing.
    boxes = page.locator("input[name=documents]")
    for i in range(boxes.count()):
        boxes.nth(i).check()
    page.get_by_label("Your password").fill("not-my-password-1")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign the ticked orders").click()
    assert navigation.value.status == 400
    expect(page.get_by_text("The password is not correct; nothing was signed.")).to_be_visible()
    expect(orders).to_have_count(4)

    boxes = page.locator("input[name=documents]")
    for i in range(boxes.count()):
        boxes.nth(i).check()
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign the ticked orders").click()
    expect(page.locator(".messages")).to_contain_text("4 order(s) signed.")
    expect(page.get_by_text("You have no unsigned verbal or telephone orders.")).to_be_visible()

    open_my_deficiencies(page)
    expect(queue_rows(page).filter(has_text="Orders")).to_have_count(0)
    expect(
        page.get_by_role("link", name=re.compile(r"Sign verbal and telephone orders"))
    ).to_have_count(0)


# --- the department -----------------------------------------------------------------------


def test_the_analysts_dashboard_and_the_rules_list(new_page, authenticators, screenshot):
    tech = new_page()
    sign_in(tech, "tech")
    with tech.expect_navigation():
        nav(tech, "completion:dashboard").click()
    expect(tech.get_by_role("heading", level=1)).to_have_text(
        "Chart completion · RecordRoom General Hospital"
    )
    expect(tech.locator("main")).to_contain_text("delinquent")
    charts = tech.locator("main svg")
    assert charts.count() >= 4, "a chart for each of service, clinician, age and the rate"
    expect(charts.first).to_be_visible()
    expect(tech.locator("main")).to_contain_text("Dr. Claire Huang")
    screenshot(tech, "completion-dashboard")

    admin = new_page()
    sign_in_with_mfa(admin, "admin", authenticators)
    with admin.expect_navigation():
        nav(admin, "completion:rules").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Completion rules")
    for code in ("discharge-summary", "authentication", "verbal-orders", "hp-timely"):
        expect(admin.locator(f'tr[data-rule="{code}"]').first).to_contain_text("in force")
    screenshot(admin, "completion-rules")
