import datetime as dt
import uuid

from ninja import Query, Router, Schema
from ninja.errors import HttpError

from audit import access

router = Router(tags=["audit"])


class EventOut(Schema):
    seq: int
    occurred_at: dt.datetime
    actor_username: str
    actor_roles: str
    action: str
    outcome: str
    purpose: str
    patient_id: uuid.UUID | None
    object_type: str
    object_id: str
    reason: str
    client_ip: str | None
    row_hash: str


class PageOut(Schema):
    count: int
    count_capped: bool
    older_than: int | None
    events: list[EventOut]


class TrailQuery(Schema):
    username: str = ""
    patient_id: uuid.UUID | None = None
    action: str = ""
    outcome: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    before: int | None = None
    limit: int = 50


@router.get("/events", response=PageOut, summary="Search the audit trail (privacy officer)")
def search_events(request, query: Query[TrailQuery]):
    if query.limit < 1 or query.limit > 500:
        raise HttpError(422, "limit must be between 1 and 500")
    filters = access.TrailFilter(
        username=query.username,
        patient_id=query.patient_id,
        action=query.action,
        outcome=query.outcome,
        date_from=query.date_from,
        date_to=query.date_to,
    )
    page = access.search_trail(request.user, filters, before=query.before, limit=query.limit)
    return {
        "count": page.count,
        "count_capped": page.count_capped,
        "older_than": page.older_than,
        "events": page.events,
    }
