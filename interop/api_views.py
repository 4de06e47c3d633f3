"""The FHIR R4 REST API at /fhir/: thin views over interop.api_access (read, vread,
history), interop.search, interop.everything, interop.resource_actions (create,
update) and interop.importer (transaction and batch Bundles).

Every request authenticates with a bearer token (interop.auth) and is checked against
the token's scopes; every answer is application/fhir+json, every error an
OperationOutcome with its HTTP status. JSON only: asking for XML answers 406.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

import orjson
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from interop import api_access, capability, everything, resource_actions, search
from interop.outcome import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    STRUCTURE,
    TOO_LONG,
    FhirError,
    Issue,
    operation_outcome,
)

FHIR_JSON = "application/fhir+json; charset=utf-8"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
MAX_RESOURCE_BYTES = 16 * 1024 * 1024


def respond(data: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(data), status=status, content_type=FHIR_JSON)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def outcome_response(status: int, issues: list[Issue], headers=None) -> HttpResponse:
    return respond(operation_outcome(issues), status, headers)


def _wants_xml(request) -> bool:
    fmt = request.GET.get("_format", "")
    if "xml" in fmt:
        return True
    accept = request.headers.get("Accept", "")
    return "xml" in accept and "json" not in accept and "*/*" not in accept


def fhir_endpoint(methods: tuple[str, ...]):
    """Allowed methods, XML refusal, and every exception as an OperationOutcome."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = outcome_response(
                    405,
                    [
                        Issue(
                            "error",
                            NOT_SUPPORTED,
                            f"{request.method} is not supported here (allowed: {', '.join(methods)}).",
                        )
                    ],
                )
                response["Allow"] = ", ".join(methods)
                return response
            if _wants_xml(request):
                return outcome_response(
                    406,
                    [
                        Issue(
                            "error",
                            NOT_SUPPORTED,
                            "RecordRoom serves FHIR JSON only (application/fhir+json).",
                        )
                    ],
                )
            try:
                return view(request, *args, **kwargs)
            except FhirError as error:
                return respond(error.outcome, error.status, getattr(error, "headers", None))
            except Http404:
                return outcome_response(404, [Issue("error", NOT_FOUND, "Not found.")])
            except RequestDataTooBig:
                return outcome_response(
                    413, [Issue("error", TOO_LONG, "The request body is too large.")]
                )
            except ValidationError as error:
                messages = error.messages if hasattr(error, "messages") else [str(error)]
                return outcome_response(422, [Issue("error", INVALID, m) for m in messages])
            except PermissionDenied as error:
                return outcome_response(403, [Issue("error", FORBIDDEN, _denial(error))])

        return wrapper

    return decorate


def _denial(error: Exception) -> str:
    name = type(error).__name__
    if name == "RestrictedRecord":
        return (
            "The patient's record is restricted and this user has no relationship with "
            "them; break-the-glass is not available through the API."
        )
    if name == "RestrictedDocument":
        return "The document is in a sensitive category this user may not read."
    return "This user's role does not allow this."


def _principal(request, resource_type: str, mode: str = "read"):
    from interop.auth import authenticate

    principal = authenticate(request)
    principal.require(resource_type, mode)
    return principal


def _base(request) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


def _params(request) -> list[tuple[str, str]]:
    pairs = [(k, v) for k in request.GET for v in request.GET.getlist(k)]
    if request.method == "POST":
        pairs += [(k, v) for k in request.POST for v in request.POST.getlist(k)]
    return pairs


def _lenient(request) -> bool:
    return "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")


def _read_headers(read: api_access.Read, base: str, resource_type: str) -> dict:
    headers = {"ETag": f'W/"{read.version}"'}
    if read.last_updated:
        from django.utils.dateparse import parse_datetime
        from django.utils.http import http_date

        moment = parse_datetime(read.last_updated)
        if moment is not None:
            headers["Last-Modified"] = http_date(moment.timestamp())
    resource_id = read.resource.get("id")
    if resource_id:
        headers["Content-Location"] = (
            f"{base}/{resource_type}/{resource_id}/_history/{read.version}"
        )
    return headers


def _body(request):
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise FhirError(
            415,
            Issue(
                "error",
                NOT_SUPPORTED,
                f"Send application/fhir+json (Content-Type was {content_type or 'missing'!r}).",
            ),
        )
    body = request.body
    if len(body) > MAX_RESOURCE_BYTES:
        raise FhirError(413, Issue("error", TOO_LONG, "The resource is too large."))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise FhirError(
            400,
            Issue(
                "error",
                STRUCTURE,
                f"The body is not valid JSON ({error.msg} at character {error.pos}).",
            ),
        ) from None


# --- views ---------------------------------------------------------------------------


@fhir_endpoint(("GET",))
def metadata_view(request):
    return respond(capability.capability_statement(_base(request)))


@fhir_endpoint(("POST",))
def bundle_view(request):
    """POST /fhir: a transaction or batch Bundle (interop.importer)."""
    from interop.auth import authenticate
    from interop.importer import process_bundle_request

    principal = authenticate(request)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise FhirError(415, Issue("error", NOT_SUPPORTED, "Send application/fhir+json."))
    status, data = process_bundle_request(
        request.body,
        acting_user=principal.user,
        source=f"fhir-api:{principal.client_id}",
        authorize=lambda entries: _require_bundle_scopes(principal, entries),
    )
    return respond(data, status)


def _require_bundle_scopes(principal, entries: list) -> None:
    """A transaction or batch is a write of every resource type it holds: the token
    needs write scope on each (audited 403 otherwise), and, since a bundle may touch
    any patient, a token limited to one patient (patient/ scopes) cannot send one.
    Called by the importer with the Bundle's entries, once it has parsed it."""
    types = sorted(
        {
            entry["resource"].get("resourceType")
            for entry in entries or []
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and isinstance(entry["resource"].get("resourceType"), str)
        }
    )
    for resource_type in types:
        principal.require(resource_type, "write")
        if principal.patient_compartment(resource_type, "write") is not None:
            record_event(
                principal.user,
                Action.CREATE,
                outcome=Outcome.DENIED,
                purpose=Purpose.SECURITY,
                object_type="fhir",
                object_id="Bundle",
                reason="a bundle cannot be sent with a token limited to one patient",
                detail={"client_id": principal.client_id},
            )
            raise FhirError(
                403,
                Issue(
                    "error",
                    FORBIDDEN,
                    "A transaction or batch Bundle may write any patient's record: a token "
                    "limited to one patient (patient/ scopes) cannot send one; use "
                    f"POST /fhir/{resource_type} instead.",
                ),
            )


@fhir_endpoint(("GET", "POST"))
def type_view(request, resource_type: str):
    """GET [type]: search. POST [type]: create."""
    if request.method == "POST":
        principal = _principal(request, resource_type, "write")
        body = _body(request)
        created = resource_actions.create(principal, resource_type, body)
        headers = _read_headers(created, _base(request), resource_type)
        headers["Location"] = headers.pop("Content-Location")
        return respond(created.resource, 201, headers)
    return _search(request, resource_type)


@fhir_endpoint(("POST",))
def search_post_view(request, resource_type: str):
    """POST [type]/_search: the same search, parameters form-encoded."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise FhirError(
            415,
            Issue("error", NOT_SUPPORTED, "POST _search takes application/x-www-form-urlencoded."),
        )
    return _search(request, resource_type)


def _search(request, resource_type: str):
    principal = _principal(request, resource_type, "read")
    params = _params(request)
    result = search.search(principal, resource_type, params, lenient=_lenient(request))
    return respond(searchset(request, result))


def searchset(request, result: search.SearchResult) -> dict:
    base = _base(request)
    url = f"{base}/{result.resource_type}"
    kept = list(result.used)
    if result.summary_count:
        kept.append(("_summary", "count"))

    def link(offset: int) -> str:
        pairs = kept + [("_count", str(result.count))]
        if offset:
            pairs.append(("_offset", str(offset)))
        return f"{url}?{urlencode(pairs)}"

    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    links = [{"relation": "self", "url": link(result.offset)}]
    if not result.summary_count:
        if result.offset:
            links.append(
                {"relation": "previous", "url": link(max(0, result.offset - result.count))}
            )
        if result.has_next:
            links.append({"relation": "next", "url": link(result.offset + result.count)})
    bundle["link"] = links
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in result.matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in result.included
    ]
    if result.issues:
        entries.append(
            {"resource": operation_outcome(result.issues), "search": {"mode": "outcome"}}
        )
    if entries:
        bundle["entry"] = entries
    return bundle


@fhir_endpoint(("GET", "PUT", "DELETE"))
def instance_view(request, resource_type: str, fhir_id: str):
    """GET [type]/[id]: read. PUT: update (If-Match honoured). DELETE: 405."""
    if request.method == "DELETE":
        raise FhirError(
            405,
            Issue(
                "error",
                NOT_SUPPORTED,
                "Nothing in the legal record is deleted: mark it entered in error instead.",
            ),
        )
    if request.method == "PUT":
        principal = _principal(request, resource_type, "write")
        body = _body(request)
        updated = resource_actions.update(
            principal, resource_type, fhir_id, body, request.headers.get("If-Match")
        )
        return respond(updated.resource, 200, _read_headers(updated, _base(request), resource_type))
    principal = _principal(request, resource_type, "read")
    read = api_access.read(principal, resource_type, fhir_id)
    return respond(read.resource, 200, _read_headers(read, _base(request), resource_type))


@fhir_endpoint(("GET",))
def history_view(request, resource_type: str, fhir_id: str):
    principal = _principal(request, resource_type, "read")
    entries = api_access.history(principal, resource_type, fhir_id)
    base = _base(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": f"{base}/{resource_type}/{fhir_id}/_history"}],
        "entry": [
            {
                "fullUrl": f"{base}/{resource_type}/{fhir_id}",
                "resource": entry.resource,
                "request": {
                    "method": entry.method,
                    "url": resource_type
                    if entry.method == "POST"
                    else f"{resource_type}/{fhir_id}",
                },
                "response": {
                    "status": "201 Created" if entry.method == "POST" else "200 OK",
                    "etag": f'W/"{entry.resource["meta"]["versionId"]}"',
                    **({"lastModified": entry.recorded} if entry.recorded else {}),
                },
            }
            for entry in entries
        ],
    }
    return respond(bundle)


@fhir_endpoint(("GET",))
def vread_view(request, resource_type: str, fhir_id: str, version_id: str):
    principal = _principal(request, resource_type, "read")
    read = api_access.vread(principal, resource_type, fhir_id, version_id)
    return respond(read.resource, 200, _read_headers(read, _base(request), resource_type))


@fhir_endpoint(("GET", "POST"))
def everything_view(request, fhir_id: str):
    """Patient/[id]/$everything."""
    principal = _principal(request, "Patient", "read")
    page = everything.everything(principal, fhir_id, _params(request))
    base = _base(request)
    url = f"{base}/Patient/{fhir_id}/$everything"
    kept = [(k, v) for k, v in _params(request) if k not in ("_count", "_offset")]

    def link(offset: int) -> str:
        pairs = (
            kept + [("_count", str(page.count))] + ([("_offset", str(offset))] if offset else [])
        )
        return f"{url}?{urlencode(pairs)}"

    links = [{"relation": "self", "url": link(page.offset)}]
    if page.offset:
        links.append({"relation": "previous", "url": link(max(0, page.offset - page.count))})
    if page.has_next:
        links.append({"relation": "next", "url": link(page.offset + page.count)})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page.resources
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return respond(bundle)


@fhir_endpoint(("GET", "POST", "PUT", "DELETE"))
def unknown_view(request, rest: str = ""):
    raise FhirError(
        404,
        Issue("error", NOT_SUPPORTED, "No such FHIR endpoint (see /fhir/metadata).", []),
    )
