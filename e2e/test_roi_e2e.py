"""Release of information in a real browser, on the demo department: the ROI specialist
logs a patient's own request, validates it, proposes the documents, sends it to the
quality check, the HIM administrator passes it, the specialist releases it (password
again), and the requester downloads the packet with the request number and the date of
birth; an attorney's request with an unsigned authorization is pended with a letter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from e2e.test_completion_e2e import UUID, sign_in, sign_in_with_mfa
from e2e.test_patient_record import confirm_password_if_asked

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _patient_of_a_demo_request(page) -> tuple[str, str]:
    """A patient of the demo's requests (its id and date of birth), read from the pages."""
    page.goto("/roi/queue/?status=logged")
    page.locator("#roi-queue tbody tr a").first.click()
    link = page.locator("#request-summary a[href^='/patients/']")
    patient_id = re.search(UUID, link.get_attribute("href")).group(0)
    born = re.search(r"born (\d{4}-\d{2}-\d{2})", page.locator("#request-summary").inner_text())
    return patient_id, born.group(1)


def _log(page, patient_id, **fields):
    page.goto(f"/roi/requests/new/{patient_id}/")
    for name, value in fields.items():
        field = page.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        elif field.get_attribute("type") == "checkbox":
            field.check()
        else:
            field.fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name="Log the request").click()
    expect(page).to_have_url(re.compile(rf"/roi/requests/{UUID}/$"))
    return page.url


def test_a_patient_request_from_intake_to_download(
    new_page, live_server_url, authenticators, screenshot
):
    specialist = new_page()
    sign_in(specialist, "roi")
    patient_id, born = _patient_of_a_demo_request(specialist)
    request_url = _log(
        specialist,
        patient_id,
        requester_type="patient",
        requester_name="The patient in person",
        identity_verified="Driver's licence seen",
        scope_all="on",
    )
    number = re.search(r"REQ-\d{4}-\d{6}", specialist.locator("h1").inner_text()).group(0)
    with specialist.expect_navigation():
        specialist.get_by_role("button", name="Validate: pend or continue").click()
    expect(specialist.locator("#request-summary")).to_contain_text("In process")
    with specialist.expect_navigation():
        specialist.get_by_role("button", name="Propose the documents in scope").click()
    screenshot(specialist, "roi-request")
    with specialist.expect_navigation():
        specialist.get_by_role("button", name="Send to the quality check").click()

    admin = new_page()
    sign_in_with_mfa(admin, "admin", authenticators)
    admin.goto(request_url)
    with admin.expect_navigation():
        admin.get_by_role("button", name="Passed").click()

    specialist.goto(request_url)
    specialist.get_by_role("button", name="Release", exact=True).click()
    specialist.wait_for_load_state()
    confirm_password_if_asked(specialist)
    if "/roi/requests/" in specialist.url and not specialist.locator("#download-link").count():
        specialist.get_by_role("button", name="Release", exact=True).click()
        specialist.wait_for_load_state()
    link = specialist.locator("#download-link").inner_text().strip()
    screenshot(specialist, "roi-packet")

    requester = new_page()
    requester.goto(link)
    requester.fill("#request-number", number)
    requester.fill("#birth-date", born)
    with requester.expect_download() as download:
        requester.get_by_role("button", name="Download the PDF").click()
    path = download.value.path()
    assert Path(path).read_bytes()[:5] == b"%PDF-"

    specialist.goto("/roi/queue/?status=released")
    expect(specialist.locator("#roi-queue")).to_contain_text(number)


def test_an_attorney_request_pends_for_a_missing_signature(new_page, live_server_url, screenshot):
    page = new_page()
    sign_in(page, "roi")
    patient_id, _ = _patient_of_a_demo_request(page)
    _log(
        page,
        patient_id,
        requester_type="attorney",
        requester_name="Lex Tallow, Esq.",
        requester_address="1 Court Square, Springfield",
        scope_all="on",
        format="paper",
        delivery="mail",
    )
    form = page.locator("#authorization")
    for box in form.locator("input[type=checkbox][name^=has_]").all():
        box.check()
    form.locator("[name=has_signature]").uncheck()
    form.locator("[name=expires_on]").fill("2030-01-01")
    with page.expect_navigation():
        form.get_by_role("button", name="Record the check").click()
    expect(page.locator("main")).to_contain_text("defective")
    with page.expect_navigation():
        page.get_by_role("button", name="Validate: pend or continue").click()
    expect(page.locator("#request-summary")).to_contain_text("Pended")
    expect(page.locator("#validation")).to_contain_text("signature")
    expect(page.locator("#letters")).to_contain_text("Pend letter")
    page.goto("/roi/queue/")
    screenshot(page, "roi-queue")
