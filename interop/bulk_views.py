"""FHIR Bulk Data export endpoints and SMART discovery. Thin: authenticate, call
``interop.bulk``, answer. Bearer tokens, never sessions, so CSRF does not apply."""

from __future__ import annotations

import orjson
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from interop import bulk
from interop.auth import authenticate
from interop.outcome import FhirError
from interop.scopes import CONTEXTS

FHIR_JSON = "application/fhir+json"


def fhir_json(body, *, status: int = 200, headers=None, content_type: str = FHIR_JSON):
    response = HttpResponse(
        orjson.dumps(body) if body is not None else b"", status=status, content_type=content_type
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: FhirError) -> HttpResponse:
    return fhir_json(error.outcome, status=error.status, headers=getattr(error, "headers", {}))


def _kickoff(request, kind: str):
    try:
        principal = authenticate(request)
        job = bulk.start_export(principal, request, kind)
    except FhirError as error:
        return error_response(error)
    status_url = request.build_absolute_uri(
        reverse("fhir_bulk:export_status", args=[job.public_id])
    )
    return fhir_json(None, status=202, headers={"Content-Location": status_url})


@csrf_exempt
@require_GET
def export_view(request):
    """System-level export: every patient the caller may see, and the shared
    resources (Practitioner, Organization, Location…)."""
    return _kickoff(request, "system")


@csrf_exempt
@require_GET
def patient_export_view(request):
    """Patient-level export: every resource in the compartments of the patients the
    caller may see."""
    return _kickoff(request, "patient")


@csrf_exempt
@require_http_methods(["GET", "DELETE"])
def export_status_view(request, job_id):
    try:
        principal = authenticate(request)
        if request.method == "DELETE":
            bulk.do_cancel_export(principal, job_id)
            return fhir_json(None, status=202)

        def file_url(public_id):
            return request.build_absolute_uri(reverse("fhir_bulk:export_file", args=[public_id]))

        answer = bulk.export_status(principal, job_id, file_url=file_url)
    except FhirError as error:
        return error_response(error)
    content_type = "application/json" if answer.status == 200 else FHIR_JSON
    return fhir_json(
        answer.body, status=answer.status, headers=answer.headers, content_type=content_type
    )


@csrf_exempt
@require_GET
def export_file_view(request, file_id):
    try:
        principal = authenticate(request)
        handle, export_file = bulk.open_export_file(principal, file_id)
    except FhirError as error:
        return error_response(error)
    response = FileResponse(handle, content_type=bulk.NDJSON)
    response["Content-Length"] = str(export_file.size)
    return response


@require_GET
def smart_configuration_view(request):
    """SMART App Launch discovery (/.well-known/smart-configuration)."""
    body = {
        "issuer": request.build_absolute_uri("/fhir"),
        "authorization_endpoint": request.build_absolute_uri(reverse("oauth:authorize")),
        "token_endpoint": request.build_absolute_uri(reverse("oauth:token")),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "scopes_supported": [
            *(
                f"{context}/*.{perm}"
                for context in CONTEXTS
                for perm in ("read", "write", "rs", "cud")
            ),
            "launch/patient",
            "openid",
            "fhirUser",
        ],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
        ],
    }
    return fhir_json(body, content_type="application/json")
