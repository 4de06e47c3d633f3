"""The statistics dashboard in a real browser, on the demo: the HIM administrator opens
it from the navigation, changes the date range (the filters land in the URL, so the view
can be bookmarked), and exports a table to CSV; for the screenshot of
docs/dashboards.md."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from e2e.test_completion_e2e import NO_HORIZONTAL_OVERFLOW, nav, sign_in_with_mfa

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_the_administrator_changes_the_range_and_exports_csv(new_page, authenticators, screenshot):
    page = new_page()
    sign_in_with_mfa(page, "admin", authenticators)
    with page.expect_navigation():
        nav(page, "reports:dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Statistics")
    main = page.locator("main")
    for title in ("Hospital statistics", "Department statistics", "Chart completion"):
        expect(main).to_contain_text(title)
    assert page.locator("main figure.chart svg[role=img]").count() >= 1

    page.fill("input[name=start]", "2020-01-01")
    page.fill("input[name=end]", "2022-12-31")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"start=2020-01-01&end=2022-12-31"))
    expect(main).to_contain_text("1 Jan 2020 – 31 Dec 2022")

    page.fill("input[name=start]", "2023-12-31")
    page.fill("input[name=end]", "2023-01-01")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("before its start")

    with page.expect_navigation():
        page.get_by_role("link", name="Reset").click()
    link = page.locator("a[data-export=csv]").first
    with page.expect_download() as download:
        link.click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 1 and rows[0][0]

    assert page.evaluate(NO_HORIZONTAL_OVERFLOW)
    screenshot(page, "reports-dashboard", full_page=False)  # the top: the page is long
