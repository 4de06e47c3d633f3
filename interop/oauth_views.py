"""The OAuth 2.0 endpoints: /oauth/token (RFC 6749 section 3.2) and /oauth/authorize
(section 3.1, with the consent page a signed-in user approves). The logic is in
``interop.oauth``; these views parse and answer."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from interop import oauth
from interop.oauth import OAuthError

AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "aud",
    "launch",
)


@csrf_exempt
@login_not_required
@require_POST
def token_view(request):
    """Exchange a grant for a bearer token. Clients authenticate with HTTP Basic or
    client_secret_post, never with a session, so CSRF does not apply."""
    try:
        issued = oauth.token_endpoint(request)
    except OAuthError as error:
        response = JsonResponse(error.as_dict(), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
    else:
        response = JsonResponse(issued.as_response())
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _back_to_app(redirect_uri: str, **params) -> HttpResponseRedirect:
    parts = urlsplit(redirect_uri)
    query = "&".join(filter(None, [parts.query, urlencode({k: v for k, v in params.items() if v})]))
    return HttpResponseRedirect(urlunsplit(parts._replace(query=query)))


def _consent_page(request, auth_request, *, error: str = "", status: int = 200):
    consent = oauth.user_app_scopes(auth_request.client, request.user, auth_request.scope)
    params = {name: request.GET.get(name, request.POST.get(name, "")) for name in AUTHORIZE_FIELDS}
    params["redirect_uri"] = auth_request.redirect_uri
    response = render(
        request,
        "interop/oauth_consent.html",
        {
            "client": auth_request.client,
            "consent": consent,
            "params": params,
            "may_pick_patient": oauth.may_pick_patient(request.user),
            "error": error,
            "mrn": request.POST.get("mrn", ""),
        },
        status=status,
    )
    # The form's answer redirects to the app: allow that origin as a form target.
    target = urlsplit(auth_request.redirect_uri)
    response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
    )
    return response


@require_http_methods(["GET", "POST"])
def authorize_view(request):
    """Ask the signed-in user to approve an app, then send them back to it with a
    code (or an error) and the app's state."""
    params = request.POST if request.method == "POST" else request.GET
    try:
        client, redirect_uri = oauth.validate_redirect(params)
    except OAuthError as error:
        return render(request, "interop/oauth_error.html", {"error": error}, status=400)
    state = params.get("state", "")[:500]
    try:
        auth_request = oauth.validate_authorization(
            params, client, redirect_uri, fhir_base=request.build_absolute_uri("/fhir")
        )
    except OAuthError as error:
        return _back_to_app(
            redirect_uri, error=error.error, error_description=error.description, state=state
        )
    if request.method == "GET":
        return _consent_page(request, auth_request)
    if request.POST.get("decision") != "approve":
        oauth.record_consent_refused(auth_request, user=request.user)
        return _back_to_app(
            redirect_uri,
            error="access_denied",
            error_description="the user declined",
            state=state,
        )
    consent = oauth.user_app_scopes(client, request.user, auth_request.scope)
    patient = None
    try:
        if consent.needs_patient:
            patient = oauth.find_patient_for_launch(request.user, request.POST.get("mrn", ""))
        code, _scope = oauth.do_issue_code(auth_request, user=request.user, patient=patient)
    except OAuthError as error:
        if error.error == "invalid_scope":
            return _back_to_app(
                redirect_uri, error=error.error, error_description=error.description, state=state
            )
        return _consent_page(request, auth_request, error=error.description, status=400)
    return _back_to_app(redirect_uri, code=code, state=state)
