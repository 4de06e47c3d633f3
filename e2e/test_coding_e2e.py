"""Coding in a real browser, on the demo department: the demo coder opens an inpatient
encounter from the coding queue, codes it, meets an edit (a diagnosis without its
present-on-admission indicator), tries to finalise and is refused with the edit, fixes
it and finalises; the MS-DRG panel follows every change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.test_completion_e2e import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def find_inpatient_to_code(page) -> str:
    """The abstract screen of a discharged inpatient encounter not coded yet."""
    page.goto("/coding/queue/")
    links = page.locator("main a", has_text=re.compile(r"^Code$"))
    hrefs = [links.nth(i).get_attribute("href") for i in range(min(links.count(), 40))]
    for href in hrefs:
        page.goto(href)
        facts = page.locator("dl.facts").first.inner_text()
        start = page.get_by_role("button", name="Start coding")
        if "Inpatient" in facts and (start.count() or "Not started" in page.content()):
            return href
    pytest.fail("the demo queue has no inpatient encounter left to code")


def test_a_coder_codes_an_inpatient_meets_an_edit_fixes_it_and_finalises(page, screenshot):
    sign_in(page, "coder")
    page.goto("/coding/queue/")
    expect(page.locator("main h1")).to_be_visible()
    screenshot(page, "coding-queue")
    find_inpatient_to_code(page)
    start = page.get_by_role("button", name="Start coding")
    if start.count():
        start.click()
        expect(page.locator("#abstract-status")).to_have_text("Not started")
    # The header edits (admission source, disposition) are met first, whatever the
    # demo encounter found has recorded.
    if not (
        page.locator("#disposition").input_value() and page.locator("#admit_source").input_value()
    ):
        if not page.locator("#disposition").input_value():
            page.select_option("#disposition", "01")
        if not page.locator("#admit_source").input_value():
            page.select_option("#admit_source", "1")
        page.get_by_role("button", name="Save header").click()
        expect(page.locator("#workspace")).to_contain_text("Header saved.")

    # Principal diagnosis, typed in lower case with its dot; the DRG appears.
    page.fill("#dx-code", "i50.21")
    page.select_option("#dx-poa", "Y")
    page.get_by_role("button", name="Add diagnosis").click()
    expect(page.locator("#diagnoses")).to_contain_text("I50.21")
    expect(page.locator("#drg-number")).to_have_text("DRG 293")

    # A secondary diagnosis with no POA: the edit shows at once, and the DRG moves.
    page.fill("#dx-code", "J96.01")
    page.get_by_role("button", name="Add diagnosis").click()
    expect(page.locator("#drg-number")).to_have_text("DRG 291")
    expect(page.locator("#drg-moved")).to_contain_text("was DRG 293")
    expect(page.locator("#edits-panel")).to_contain_text(
        "J96.01 needs a present-on-admission indicator"
    )

    # Finalising is refused with the edit; nothing changes.
    page.get_by_role("button", name="Finalise").click()
    expect(page.locator("#problems")).to_contain_text("cannot be finalised until these edits pass")
    expect(page.locator("#abstract-status")).to_have_text("In progress")
    screenshot(page, "coding-abstract")

    # Fix it: POA Y on the second diagnosis (saved on change).
    # The refused finalise re-draws the workspace; wait for it before the next change,
    # and for the POA change's own answer.
    page.wait_for_load_state("networkidle")
    with page.expect_response(lambda r: "/diagnoses/2/" in r.url and r.request.method == "POST"):
        page.select_option("#poa-2", "Y")
    expect(page.locator("#edits-panel")).not_to_contain_text("needs a present-on-admission")
    assert page.locator("#edit-errors").inner_text().strip() == "0", page.locator(
        "#edits-panel"
    ).inner_text()
    page.get_by_role("button", name="Finalise").click()
    expect(page.locator("#abstract-status")).to_have_text("Final")
    expect(page.locator("#drg-number")).to_have_text("DRG 291")

    page.get_by_role("link", name="Version history").click()
    expect(page.locator("main table")).to_contain_text("finalised")
