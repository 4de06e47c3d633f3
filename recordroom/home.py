"""Each role's home page: the panels of work that role does, as data.

A panel's ``items`` callable returns the rows to show; the department's queues fill
in as their apps land (registration, coding, release of information, …), and an empty
panel says plainly that nothing is waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from accounts.roles import Role, roles_of


@dataclass
class Panel:
    title: str
    description: str
    empty: str
    items: Callable[[object], list] = field(default=lambda user: [])
    template: str = "recordroom/panels/_list.html"


def _recent_denials(user):
    from audit.access import recent_denials

    return recent_denials(user)


def _locked_accounts(user):
    from accounts.access import locked_users

    return locked_users(user)


def _break_the_glass_to_review(user):
    from patients.restriction_access import pending_break_the_glass

    return pending_break_the_glass(user)


def _records_to_complete(user):
    from completion.summary import clinician_summary

    return clinician_summary(user)


def _chart_completion(user):
    from completion.summary import him_summary

    return him_summary(user)


def _coding_queue(user):
    from coding.summary import work_queue

    return work_queue(user)


def _coding_open_queries(user):
    from coding.summary import open_queries

    return open_queries(user)


def _coding_my_queries(user):
    from coding.summary import my_queries

    return my_queries(user)


def _roi_due_soon(user):
    from roi.summary import due_soon

    return due_soon(user)


def _roi_pended(user):
    from roi.summary import pended

    return pended(user)


CHART_COMPLETION = Panel(
    "Chart completion",
    "Incomplete and delinquent records, and this month's delinquency rate.",
    "No facility to report on.",
    _chart_completion,
    "completion/_home_him.html",
)


PANELS: dict[Role, list[Panel]] = {
    Role.HIM_TECHNICIAN: [
        Panel(
            "Registrations to verify",
            "New patients and index entries waiting for a second check.",
            "Nothing to verify.",
        ),
        Panel(
            "Documents to index",
            "Scanned batches waiting to be typed and filed to a patient.",
            "No batches waiting.",
        ),
        Panel(
            "Charts checked out",
            "Physical charts out of the file room, by due date.",
            "No charts are out.",
        ),
        CHART_COMPLETION,
    ],
    Role.HIM_ADMINISTRATOR: [
        Panel(
            "Locked accounts",
            "Accounts locked after repeated failed log-ins.",
            "No account is locked.",
            _locked_accounts,
            "recordroom/panels/_users.html",
        ),
        Panel(
            "Possible duplicate records",
            "Pairs in the master patient index waiting for review.",
            "No pairs waiting.",
        ),
        CHART_COMPLETION,
    ],
    Role.CODER: [
        Panel(
            "Coding work queue",
            "Discharged encounters ready for coding, oldest first.",
            "No encounters waiting.",
            _coding_queue,
            "coding/queue_home.html",
        ),
        Panel(
            "Open physician queries",
            "Queries waiting for a clinician's answer.",
            "No open queries.",
            _coding_open_queries,
            "coding/query_home.html",
        ),
    ],
    Role.ROI_SPECIALIST: [
        Panel(
            "Requests due soon",
            "Release-of-information requests by days left.",
            "No open requests.",
            _roi_due_soon,
        ),
        Panel(
            "Pended requests",
            "Requests waiting for something from the requester.",
            "Nothing pended.",
            _roi_pended,
        ),
    ],
    Role.CLINICIAN: [
        Panel(
            "Records to complete",
            "Your open deficiencies, those near delinquency, and your reminders.",
            "Nothing to complete.",
            _records_to_complete,
            "completion/_home_clinician.html",
        ),
        Panel(
            "Coding queries for me",
            "Questions from coders about your documentation.",
            "No queries.",
            _coding_my_queries,
            "coding/query_home_clinician.html",
        ),
    ],
    Role.PRIVACY_OFFICER: [
        Panel(
            "Recent refusals",
            "The latest denied accesses and failed log-ins.",
            "Nothing refused lately.",
            _recent_denials,
            "recordroom/panels/_audit.html",
        ),
        Panel(
            "Break-the-glass to review",
            "Emergency accesses past a restriction, waiting for review.",
            "Nothing to review.",
            _break_the_glass_to_review,
            "recordroom/panels/_btg.html",
        ),
    ],
    Role.PATIENT: [
        Panel(
            "My requests",
            "Copies of your record and amendments you asked for.",
            "You have no open requests.",
        ),
    ],
}


def panels_for(user) -> list[tuple[Role, list[dict]]]:
    result = []
    for role in roles_of(user):
        rendered = [{"panel": panel, "rows": panel.items(user)} for panel in PANELS.get(role, [])]
        if rendered:
            result.append((role, rendered))
    return result
