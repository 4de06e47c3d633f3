"""The patient record in a real browser: registration with its duplicate warning, search,
the chart, an admission, a progress note written, signed, amended and signed again, and
break-the-glass into a restricted record with the privacy officer's review.

Each test registers the people it needs, with invented names made unique by a random
part, so the tests do not depend on one another or on their order."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets
from zoneinfo import ZoneInfo

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DEMO_PASSWORD = "recordroom-demo-2026"  # the published demo password (recordroom/demo.py)
FACILITY_TIME_ZONE = ZoneInfo(os.environ.get("RECORDROOM_TIME_ZONE") or "America/New_York")
MRN = re.compile(r"\b(RG\d{8})\b")
ANY_MRN = re.compile(r"\b((RG|WC)\d{8})\b")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CHART_URL = re.compile(rf"/patients/({UUID})/$")
NO_HORIZONTAL_OVERFLOW = (
    "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
)


# --- helpers ------------------------------------------------------------------------------


def invented(stem: str) -> str:
    """A double-barrelled family name no other test uses: 'Quillfeather-Tavero'."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = "".join(secrets.choice(consonants) + secrets.choice(vowels) for _ in range(3))
    return f"{stem}-{syllables.capitalize()}"


def sign_in(page, username, password=DEMO_PASSWORD):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def sign_in_with_mfa(page, username, authenticators):
    """Password, then the second factor: enrol a new authenticator (its key kept in the
    session's registry) or answer with the key enrolled earlier in this session."""
    sign_in(page, username)
    expect(page).to_have_url(re.compile(r"/accounts/mfa/"))
    if page.locator("code.secret[data-secret]").count():
        expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator")
        key = page.locator("code.secret[data-secret]").inner_text().strip()
        last_step, button = -1, "Confirm and sign in"
    else:
        assert username in authenticators, (
            f"{username} has an authenticator enrolled outside this session's registry"
        )
        key, last_step = authenticators[username]
        button = "Verify"
    totp = TOTP(base64.b32decode(key))
    if totp.t() <= last_step:  # a code is accepted once: use the next one (within tolerance)
        totp.drift = last_step + 1 - totp.t()
    authenticators[username] = (key, totp.t())
    page.fill("input[name=token]", f"{totp.token():06d}")
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/(mfa|login)/"))


def confirm_password_if_asked(page):
    """Sensitive pages ask for the password again (accounts/sudo.py)."""
    if "/accounts/confirm-password/" in page.url:
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your password")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm").click()
        expect(page).not_to_have_url(re.compile(r"/accounts/confirm-password/"))


def reset_authenticator(admin, username, authenticators):
    """The HIM administrator resets a user's authenticator (if one is set up): the user
    enrols again at the next log-in."""
    admin.goto("/accounts/users/")
    admin.get_by_role("link", name=username, exact=True).click()
    admin.wait_for_load_state()
    confirm_password_if_asked(admin)
    expect(admin.get_by_role("heading", level=1)).to_have_text(f"User {username}")
    button = admin.get_by_role("button", name="Reset authenticator")
    if button.count():
        with admin.expect_navigation():
            button.click()
        expect(admin.locator(".messages")).to_contain_text(f"The authenticator of {username}")
    expect(admin.get_by_text("Authenticator: not set up.")).to_be_visible()
    authenticators.pop(username, None)


def fill_registration(page, person):
    """Step 1 of registration: type the person, ask for the duplicate check."""
    page.goto("/patients/register/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Register a patient")
    page.get_by_label("Family name (legal)").fill(person["family"])
    page.get_by_label("Given name (legal)").fill(person["given"])
    page.get_by_label("Date of birth").fill(person["birth_date"])
    page.get_by_label("Sex assigned at birth").select_option(person["sex"])
    page.fill("#id_line1", person["line1"])
    page.fill("#id_city", person["city"])
    page.select_option("#id_state", person["state"])
    page.fill("#id_postal_code", person["postal_code"])
    page.get_by_label("Mobile phone").fill(person["phone"])
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Check for existing patients").click()
    assert navigation.value.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Is this person already on file?")


def person(family, given, birth_date, sex="F", **overrides):
    return {
        "family": family,
        "given": given,
        "birth_date": birth_date,
        "sex": sex,
        "line1": "17 Larkspur Lane",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62704",
        "phone": "217-555-0147",
        **overrides,
    }


def register_new(page, who) -> tuple[str, str]:
    """Register someone the index does not know yet; returns (public id, MRN)."""
    fill_registration(page, who)
    expect(page.locator("#matches-title")).to_have_text("No likely match at your facilities")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Register a new patient").click()
    assert navigation.value.status == 200
    expect(page).to_have_url(re.compile(rf"/patients/{UUID}/demographics/$"))
    message = page.locator(".messages")
    expect(message).to_contain_text("Registered as a new patient with MRN")
    mrn = MRN.search(message.inner_text()).group(1)
    public_id = re.search(UUID, page.url).group(0)
    expect(page.get_by_role("heading", level=1)).to_contain_text(who["family"].upper())
    return public_id, mrn


def search(page, query):
    """Type into the search box and submit; htmx swaps in the results."""
    page.goto("/patients/")
    page.get_by_role("searchbox", name="Search").fill(query)
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#search-results")
    expect(results.locator("p.count")).to_be_visible()
    return results


def open_chart_by_mrn(page, mrn):
    results = search(page, mrn)
    expect(results.locator("p.count")).to_have_text("1 patient matches.")
    with page.expect_navigation():
        results.locator("#patient-results tbody tr a").first.click()


def facility_now() -> dt.datetime:
    return dt.datetime.now(FACILITY_TIME_ZONE)


# --- registration, search, chart ----------------------------------------------------------


def test_registration_warns_of_a_likely_duplicate_and_opens_the_existing_chart(page, screenshot):
    family = invented("Quillfeather")
    first = person(family, "Marigold", "1987-04-12")
    sign_in(page, "tech")
    public_id, mrn = register_new(page, first)
    expect(page.locator("#identifiers-title + table")).to_contain_text(mrn)

    # The same woman again, her family name misspelt and the day and month typed the
    # wrong way round: the check lists the first registration with its reasons.
    again = person(family.replace("Quill", "Quil", 1), "Marigold", "1987-12-04")
    fill_registration(page, again)
    expect(page.locator("#matches-title")).to_have_text("1 possible match at your facilities")
    candidate = page.locator(f'#candidates article[data-candidate="{public_id}"]')
    expect(candidate).to_be_visible()
    expect(candidate.get_by_role("heading", level=3)).to_have_text(f"{family.upper()}, Marigold")
    expect(candidate).to_have_attribute("data-level", "likely")
    expect(candidate).to_contain_text("Likely the same person")
    expect(candidate).to_contain_text(mrn)
    expect(candidate).to_contain_text("1987-04-12")
    reasons = candidate.locator("ul.reasons li")
    expect(reasons.filter(has_text="Family name sounds alike")).to_have_count(1)
    expect(reasons.filter(has_text="month and day swapped")).to_have_count(1)
    expect(reasons.filter(has_text="Same given name")).to_have_count(1)
    expect(reasons.filter(has_text="Same phone number")).to_have_count(1)
    expect(reasons.filter(has_text="Same street address")).to_have_count(1)
    expect(page.locator("section[aria-labelledby=typed-title]")).to_contain_text(
        f"{again['family'].upper()}, Marigold"
    )
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the duplicate check is wider than the window"
    screenshot(page, "register-duplicates")

    # Registering anyway needs the box ticked that says the match was checked.
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Register a new patient").click()
    assert navigation.value.status == 400
    expect(page.get_by_role("alert").filter(has_text="Tick this box")).to_be_visible()
    expect(page.locator(f'article[data-candidate="{public_id}"]')).to_be_visible()

    # It is the same person: open her chart.
    with page.expect_navigation():
        candidate.get_by_role("link", name="This is the person: open the chart").click()
    expect(page).to_have_url(re.compile(rf"/patients/{public_id}/$"))
    banner = page.get_by_role("region", name="Patient banner")
    expect(banner.get_by_role("heading", level=1)).to_have_text(f"{family.upper()}, Marigold")
    expect(banner.locator("tbody td").first).to_have_text(mrn)

    # No second patient was created: each spelling finds the one registration.
    for query in (f"{family}, Marigold", f"{again['family']}, Marigold"):
        results = search(page, query)
        expect(results.locator("p.count")).to_have_text("1 patient matches.")
        expect(results.locator("#patient-results tbody tr")).to_have_count(1)
        expect(results.locator("#patient-results tbody tr")).to_have_attribute(
            "data-patient", public_id
        )


def test_search_by_misspelt_name_and_by_mrn_opens_the_chart(page):
    family = invented("Thistlewood")
    sign_in(page, "tech")
    public_id, mrn = register_new(
        page, person(family, "Rosalind", "1954-09-30", phone="312-555-0190", line1="4 Elm Row")
    )

    misspelt = family.replace("Thistlewood", "Thistelwood", 1)
    results = search(page, f"{misspelt}, Rosalnd")
    row = results.locator(f'#patient-results tbody tr[data-patient="{public_id}"]')
    expect(row).to_be_visible()
    # What was typed (a name, a date of birth) stays out of the address bar and history.
    assert "Rosalnd" not in page.url and "q=" not in page.url
    row = results.locator(f'#patient-results tbody tr[data-patient="{public_id}"]')
    expect(row).to_be_visible()
    expect(results.locator("#patient-results tbody tr").first).to_have_attribute(
        "data-patient", public_id
    )  # best match first
    expect(row.locator("td").nth(0)).to_have_text(mrn)
    expect(row.locator("td").nth(1)).to_contain_text(f"{family.upper()}, Rosalind")
    expect(row.locator("td").nth(2)).to_contain_text("1954-09-30")
    expect(row.locator("td").nth(4)).to_contain_text("sounds alike")

    results = search(page, mrn)
    expect(results.locator("p.count")).to_have_text("1 patient matches.")
    row = results.locator("#patient-results tbody tr")
    expect(row).to_have_attribute("data-patient", public_id)
    expect(row.locator("td").nth(4)).to_contain_text("MRN")
    with page.expect_navigation() as navigation:
        row.get_by_role("link", name=f"{family.upper()}, Rosalind").click()
    assert navigation.value.status == 200
    expect(page).to_have_url(re.compile(rf"/patients/{public_id}/$"))
    banner = page.get_by_role("region", name="Patient banner")
    expect(banner.get_by_role("heading", level=1)).to_have_text(f"{family.upper()}, Rosalind")
    facts = banner.locator("table.banner-facts tbody td")
    expect(facts.nth(0)).to_have_text(mrn)
    expect(facts.nth(1)).to_contain_text("1954-09-30")
    expect(facts.nth(2)).to_contain_text("Female")
    expect(page.locator("#timeline-title")).to_contain_text("Encounters (0)")


def test_a_demo_patients_chart_shows_encounters_with_their_documents(page, screenshot):
    """Walk the demo population through the search page (a given-name initial finds
    everyone whose given name starts with it) to a chart with several encounters."""
    sign_in(page, "tech")
    seen = set()
    chart = None
    for letter in "abcdefghijklmnopqrstuvwxyz":
        results = search(page, letter)
        links = results.locator("#patient-results tbody tr:not([data-restricted]) a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        for href in hrefs:
            if href in seen:
                continue
            seen.add(href)
            page.goto(href)
            count = int(re.search(r"\d+", page.locator("#timeline-title .count").inner_text())[0])
            documents = page.locator("details.encounter[open] table tbody tr").count()
            if count >= 3 and documents:
                chart = href
                break
        if chart:
            break
    assert chart, f"no demo patient with three encounters among {len(seen)} charts"

    banner = page.get_by_role("region", name="Patient banner")
    # The demo's patients are at the hospital (RG…) or the clinic (WC…).
    expect(banner.locator("table.banner-facts tbody td").first).to_have_text(ANY_MRN)
    encounters = page.locator("details.encounter")
    assert encounters.count() >= 3
    newest = page.locator("details.encounter[open]").first
    expect(newest.locator("summary")).to_contain_text(re.compile(r"\d+ documents?"))
    assert page.evaluate(NO_HORIZONTAL_OVERFLOW), "the chart is wider than the window"
    screenshot(page, "chart")

    # The newest encounter's first document opens with the patient banner above it.
    document_link = newest.locator("table tbody tr a").first
    title = document_link.inner_text().strip()
    with page.expect_navigation() as navigation:
        document_link.click()
    assert navigation.value.status == 200
    expect(page).to_have_url(re.compile(rf"/documents/{UUID}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(".doc-banner")).to_contain_text(re.compile(r"MRN (RG|WC)\d{8}"))
    page.get_by_role("link", name="Back to the chart").click()
    expect(page).to_have_url(re.compile(re.escape(chart) + "$"))


# --- admission and the legal document ---------------------------------------------------


def test_admission_then_a_progress_note_is_signed_amended_and_signed_again(new_page, screenshot):
    family = invented("Pemberwick")
    tech = new_page()
    sign_in(tech, "tech")
    public_id, mrn = register_new(tech, person(family, "Ottoline", "1961-02-17"))

    # The technician admits her under Dr. Claire Huang.
    tech.goto(f"/patients/{public_id}/")
    with tech.expect_navigation():
        tech.get_by_role("link", name="New encounter").click()
    expect(tech.get_by_role("heading", level=1)).to_have_text("New encounter")
    admitted = facility_now() - dt.timedelta(hours=3)
    tech.get_by_label("Class").select_option(label="Inpatient")
    tech.get_by_label("Status").select_option("in-progress")
    tech.fill("#id_started_at", admitted.strftime("%Y-%m-%dT%H:%M"))
    tech.get_by_label("Attending").select_option(label="Dr. Claire Huang")
    tech.get_by_label("Service").fill("medicine")
    tech.get_by_label("Admit source").select_option(label="Emergency room")
    tech.get_by_label("Unit").fill("4 West")
    tech.get_by_label("Bed").fill("12")
    tech.get_by_label("Reason for visit").fill("Community-acquired pneumonia")
    with tech.expect_navigation() as navigation:
        tech.get_by_role("button", name="Register encounter").click()
    assert navigation.value.status == 200
    expect(tech).to_have_url(re.compile(rf"/encounters/{UUID}/$"))
    message = tech.locator(".messages")
    expect(message).to_contain_text(re.compile(r"Encounter \S+ registered\."))
    visit = re.search(r"Encounter (\S+) registered", message.inner_text()).group(1)
    main = tech.locator("main")
    expect(main).to_contain_text("Dr. Claire Huang")
    expect(main).to_contain_text("4 West")

    # Dr. Huang finds her patient and writes a progress note for the admission.
    doctor = new_page()
    sign_in(doctor, "clinician")
    doctor.locator('nav[aria-label="Main"] a[data-nav="patients:search"]').click()
    expect(doctor).to_have_url(re.compile(r"/patients/$"))
    open_chart_by_mrn(doctor, mrn)
    expect(doctor).to_have_url(re.compile(rf"/patients/{public_id}/$"))
    encounter = doctor.locator("details.encounter").first
    expect(encounter.locator("summary")).to_contain_text(visit)
    expect(encounter.locator("summary")).to_contain_text("Inpatient")
    expect(encounter.locator("summary")).to_contain_text("Dr. Claire Huang")
    expect(encounter.locator("summary")).to_contain_text("In progress")
    expect(doctor.get_by_role("link", name="New encounter")).to_have_count(0)

    with doctor.expect_navigation():
        doctor.get_by_role("link", name="New document").click()
    expect(doctor.get_by_role("heading", level=1)).to_have_text("New document")
    expect(doctor.locator(".doc-banner")).to_contain_text(f"MRN {mrn}")
    doctor.get_by_label("Document type").select_option(label="Progress note (11506-3)")
    doctor.get_by_label("Title").fill("Hospital day 1 progress note")
    admission = doctor.locator("#id_encounter option", has_text=f"{visit} · Inpatient")
    doctor.get_by_label("Encounter").select_option(admission.get_attribute("value"))
    first_text = (
        "S: Cough improving, no chest pain.\n"
        "O: Afebrile, SpO2 95% on room air.\n"
        "A: Community-acquired pneumonia, improving.\n"
        "P: Continue ceftriaxone."
    )
    doctor.get_by_label("Text").fill(first_text)
    with doctor.expect_navigation() as navigation:
        doctor.get_by_role("button", name="Save", exact=True).click()
    assert navigation.value.status == 200
    expect(doctor).to_have_url(re.compile(rf"/documents/{UUID}/$"))
    document_url = doctor.url
    expect(doctor.locator(".messages")).to_contain_text("Document saved.")
    expect(doctor.locator(".doc-meta .status-badge")).to_have_text("Draft")
    expect(doctor.locator(".doc-meta")).to_contain_text(visit)
    expect(doctor.locator(".signature")).to_contain_text("Not signed.")

    # Signing asks for the password again; a wrong one signs nothing.
    with doctor.expect_navigation():
        doctor.get_by_role("link", name="Sign", exact=True).click()
    expect(doctor.get_by_role("heading", level=1)).to_have_text(
        "Sign: Hospital day 1 progress note"
    )
    doctor.get_by_label("Your password").fill("not-my-password-1")
    with doctor.expect_navigation() as navigation:
        doctor.get_by_role("button", name="Sign", exact=True).click()
    assert navigation.value.status == 400
    expect(
        doctor.get_by_text("The password is not correct; the document was not signed.")
    ).to_be_visible()
    doctor.get_by_label("Your password").fill(DEMO_PASSWORD)
    with doctor.expect_navigation():
        doctor.get_by_role("button", name="Sign", exact=True).click()
    expect(doctor).to_have_url(document_url)
    expect(doctor.locator(".messages")).to_contain_text("Version 1 signed.")
    expect(doctor.locator(".doc-meta .status-badge")).to_have_text("Final (signed)")
    expect(doctor.locator(".signature")).to_contain_text(
        "Electronically signed by Dr. Claire Huang"
    )
    expect(doctor.locator(".signature .ok")).to_have_text("Content matches its signed SHA-256.")
    expect(doctor.get_by_role("link", name="Edit draft")).to_have_count(0)

    # An amendment, with its reason, becomes current only once signed.
    with doctor.expect_navigation():
        doctor.get_by_role("link", name="Amend or correct").click()
    expect(doctor.get_by_role("heading", level=1)).to_have_text(
        "Amend or correct: Hospital day 1 progress note"
    )
    expect(doctor.get_by_label("Amendment (adds or clarifies)")).to_be_checked()
    doctor.get_by_label("Reason", exact=True).fill("Antibiotic plan clarified")
    amended_text = first_text.replace(
        "P: Continue ceftriaxone.",
        "P: Continue ceftriaxone; add azithromycin for atypical cover.",
    )
    doctor.get_by_label("Text").fill(amended_text)
    with doctor.expect_navigation():
        doctor.get_by_role("button", name="Save the new version").click()
    expect(doctor).to_have_url(re.compile(rf"/documents/{UUID}/sign/$"))
    expect(doctor.locator(".messages")).to_contain_text(
        "Version 2 saved; sign it to make it current."
    )
    expect(doctor.locator("main")).to_contain_text("Reason: Antibiotic plan clarified")
    doctor.get_by_label("Your password").fill(DEMO_PASSWORD)
    with doctor.expect_navigation():
        doctor.get_by_role("button", name="Sign", exact=True).click()
    expect(doctor).to_have_url(document_url)
    expect(doctor.locator(".messages")).to_contain_text("Version 2 signed.")
    expect(doctor.locator(".doc-meta .status-badge")).to_have_text("Amended")
    expect(doctor.get_by_role("heading", level=2)).to_have_text("Version 2 · Amendment")
    expect(doctor.locator("main")).to_contain_text("Reason: Antibiotic plan clarified")
    expect(doctor.locator("pre.doc-body")).to_contain_text("add azithromycin")
    screenshot(doctor, "document")

    # The history keeps both versions, and the diff shows the changed line.
    with doctor.expect_navigation():
        doctor.get_by_role("link", name="History").click()
    expect(doctor.get_by_role("heading", level=1)).to_have_text(
        "History: Hospital day 1 progress note"
    )
    versions = doctor.locator("#versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(0).locator("td").nth(0)).to_have_text("Version 1")
    expect(versions.nth(0).locator("td").nth(1)).to_have_text("Original")
    expect(versions.nth(1).locator("td").nth(0)).to_have_text("Version 2 current")
    expect(versions.nth(1).locator("td").nth(1)).to_have_text("Amendment")
    expect(versions.nth(1).locator("td").nth(3)).to_have_text("Antibiotic plan clarified")
    for i in range(2):
        expect(versions.nth(i).locator("td").nth(4)).to_contain_text("Dr. Claire Huang")
        expect(versions.nth(i).locator("td").nth(4)).to_contain_text("intact")
    changes = doctor.locator("#status-changes tbody tr td:nth-child(3)")
    expect(changes).to_have_text(["Draft", "Final (signed)", "Amended"])

    with doctor.expect_navigation():
        doctor.get_by_role("link", name="Changes from 1").click()
    expect(doctor.get_by_role("heading", level=1)).to_have_text("Changes: version 1 → 2")
    expect(doctor.locator("p.count")).to_have_text("1 line added, 1 removed.")
    expect(doctor.locator("#diff tr.removed td.text")).to_have_text(["P: Continue ceftriaxone."])
    expect(doctor.locator("#diff tr.added td.text")).to_have_text(
        ["P: Continue ceftriaxone; add azithromycin for atypical cover."]
    )
    expect(doctor.locator("#diff tr.same")).to_have_count(3)

    # Back on the chart, the note is filed under the admission.
    doctor.goto(f"/patients/{public_id}/")
    encounter = doctor.locator("details.encounter").first
    expect(encounter.locator("summary")).to_contain_text("1 document")
    expect(encounter.get_by_role("link", name="Hospital day 1 progress note")).to_be_visible()


# --- restriction and break-the-glass -----------------------------------------------------


@pytest.fixture
def administrator(new_page, authenticators):
    """The HIM administrator, signed in with an authenticator. Afterwards, if a test here
    enrolled the privacy officer's authenticator, it is reset, so the account is left as
    the demo makes it (other tests enrol it at its first log-in)."""
    admin = new_page()
    sign_in_with_mfa(admin, "admin", authenticators)
    yield admin
    if "privacy" in authenticators:
        reset_authenticator(admin, "privacy", authenticators)


def test_break_the_glass_into_a_vip_record_and_the_privacy_officers_review(
    new_page, administrator, authenticators, screenshot
):
    family = invented("Ravenscroft")
    tech = new_page()
    sign_in(tech, "tech")
    public_id, mrn = register_new(tech, person(family, "Odette", "1979-06-08", sex="F"))

    # The HIM administrator flags her VIP, confirming the password first.
    admin = administrator
    open_chart_by_mrn(admin, mrn)
    expect(admin).to_have_url(re.compile(rf"/patients/{public_id}/$"))
    admin.goto(f"/patients/{public_id}/restriction/")
    confirm_password_if_asked(admin)
    expect(admin).to_have_url(re.compile(rf"/patients/{public_id}/restriction/$"))
    expect(admin.get_by_role("heading", level=1)).to_have_text(
        f"Restriction of {family.upper()}, Odette"
    )
    expect(admin.locator("#current-title + p")).to_contain_text("None")
    admin.get_by_label("VIP: a person of public interest").check()
    admin.get_by_label("Reason for the change").fill("Local news anchor; privacy office request")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Save the restriction").click()
    expect(admin.locator(".messages")).to_contain_text("The restriction is saved.")
    expect(admin.locator("#current-title + p strong")).to_have_text("VIP")
    history = admin.locator("#restriction-history tbody tr").first
    expect(history).to_contain_text("VIP")
    expect(history).to_contain_text("Local news anchor; privacy office request")

    # The coder finds her and meets the restriction notice, which names no one.
    coder = new_page()
    sign_in(coder, "coder")
    results = search(coder, mrn)
    row = results.locator(f'#patient-results tbody tr[data-patient="{public_id}"]')
    expect(row).to_have_attribute("data-restricted", "")
    expect(row.locator(".role-badge.warn")).to_have_text("Restricted")
    with coder.expect_navigation():
        row.get_by_role("link").click()
    expect(coder).to_have_url(re.compile(rf"/patients/{public_id}/restricted/$"))
    notice = coder.locator('section[aria-labelledby="restricted-title"]')
    expect(notice.get_by_role("heading", level=1)).to_have_text("This record is restricted")
    expect(notice).to_have_attribute("data-restricted", "vip")
    expect(notice.locator("p").first).to_contain_text(f"The record {public_id} is flagged VIP")
    expect(notice).to_contain_text("Your attempt to open it has been recorded")
    main_text = coder.locator("main").inner_text()
    assert family.upper() not in main_text.upper(), "the notice shows the patient's name"
    assert "Odette" not in main_text, "the notice shows the patient's name"
    assert mrn not in main_text, "the notice shows the MRN"
    screenshot(coder, "restricted")

    # Break the glass: a reason and the password. A wrong password opens nothing.
    coder.get_by_label("Reason for emergency access").select_option("covering")
    coder.get_by_label("Describe the emergency").fill(
        "Covering the night shift: the admission query cannot wait for the day team"
    )
    coder.get_by_label("Your password").fill("not-my-password-1")
    with coder.expect_navigation() as navigation:
        coder.get_by_role("button", name="Break the glass and open the record").click()
    assert navigation.value.status == 400
    expect(coder.get_by_text("That is not your password.")).to_be_visible()
    expect(coder.get_by_label("Describe the emergency")).to_have_value(
        "Covering the night shift: the admission query cannot wait for the day team"
    )
    coder.get_by_label("Your password").fill(DEMO_PASSWORD)
    with coder.expect_navigation():
        coder.get_by_role("button", name="Break the glass and open the record").click()
    expect(coder).to_have_url(re.compile(rf"/patients/{public_id}/$"))
    expect(coder.locator(".messages")).to_contain_text(
        re.compile(r"Emergency access granted until \d\d:\d\d\. It is recorded")
    )
    banner = coder.get_by_role("region", name="Patient banner")
    expect(banner.get_by_role("heading", level=1)).to_have_text(f"{family.upper()}, Odette")
    expect(banner.locator('[data-banner="restriction"]')).to_contain_text("VIP")

    # The privacy officer reviews it: the officer's authenticator is enrolled afresh.
    reset_authenticator(admin, "privacy", authenticators)
    privacy = new_page()
    sign_in_with_mfa(privacy, "privacy", authenticators)
    privacy.locator('nav[aria-label="Main"] a[data-nav="patients:btg_queue"]').click()
    expect(privacy).to_have_url(re.compile(r"/patients/break-the-glass/$"))
    expect(privacy.get_by_role("heading", level=1)).to_have_text("Break-the-glass review")
    pending = privacy.locator("#btg-queue tbody tr", has_text=f"MRN {mrn}")
    expect(pending).to_have_count(1)
    expect(pending.locator("td").nth(1)).to_contain_text("coder")
    expect(pending.locator("td").nth(3)).to_contain_text("Covering for the patient's treating")
    expect(pending.locator("td").nth(4)).to_contain_text("active")
    assert family.upper() not in privacy.locator("#btg-queue").inner_text().upper()
    screenshot(privacy, "btg-queue")

    with privacy.expect_navigation():
        pending.get_by_role("link", name="Review").click()
    expect(privacy.get_by_role("heading", level=1)).to_have_text("Break-the-glass by coder")
    grant = privacy.locator("#btg-grant")
    expect(grant).to_contain_text(f"MRN {mrn}")
    expect(grant).to_contain_text("VIP")
    expect(grant).to_contain_text("the admission query cannot wait for the day team")
    accesses = privacy.locator("#btg-accesses tbody tr")
    expect(accesses.filter(has_text="Emergency").first).to_be_visible()  # the chart it opened
    privacy.get_by_label("Appropriate: the access was justified").check()
    privacy.get_by_label("Review note").fill("Confirmed with the coding supervisor's night rota.")
    with privacy.expect_navigation():
        privacy.get_by_role("button", name="Record the review and close").click()
    expect(privacy).to_have_url(re.compile(r"/patients/break-the-glass/$"))
    expect(privacy.locator(".messages")).to_contain_text(
        "The review is recorded and the access is closed."
    )
    expect(privacy.locator("#btg-queue tbody tr", has_text=f"MRN {mrn}")).to_have_count(0)

    privacy.get_by_role("link", name="Reviewed").click()
    expect(privacy).to_have_url(re.compile(r"tab=reviewed"))
    reviewed = privacy.locator("#btg-queue tbody tr", has_text=f"MRN {mrn}")
    expect(reviewed).to_have_count(1)
    expect(reviewed.locator("td").nth(5)).to_have_text("Appropriate")
    expect(reviewed.locator("td").nth(6)).to_contain_text("privacy")


def test_the_chart_leads_the_him_administrator_to_the_restriction_screen(page, administrator):
    """The restriction screen is reached from the patient's record, not by typing its
    address: the chart (or the demographics page) of a patient links to it for those
    who manage restrictions."""
    sign_in(page, "tech")
    _, mrn = register_new(page, person(invented("Fairweather"), "Clement", "1990-01-15", sex="M"))
    admin = administrator
    open_chart_by_mrn(admin, mrn)
    chart = admin.url
    link = admin.locator("main").get_by_role("link", name=re.compile(r"restrict", re.I))
    if not link.count():
        admin.get_by_role("link", name="Demographics").click()
        link = admin.locator("main").get_by_role("link", name=re.compile(r"restrict", re.I))
    expect(link.first, f"no link to the restriction screen from {chart}").to_be_visible()
    link.first.click()
    confirm_password_if_asked(admin)
    expect(admin).to_have_url(re.compile(rf"/patients/{UUID}/restriction/$"))
