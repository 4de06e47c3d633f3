"""Code look-up screens: a page with a live (htmx) search box, and the results as an
HTML fragment (or JSON with ``?format=json``) for autocomplete in other screens.

Thin: parse → ``coding.lookup.look_up`` (permission checked, refusal audited) → render.
Code tables hold no patient data.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from coding import lookup
from coding.models import CodeSystem


def _params(request) -> dict:
    system = request.GET.get("system") or CodeSystem.ICD10CM
    if system not in CodeSystem.values:
        system = CodeSystem.ICD10CM
    try:
        limit = int(request.GET.get("limit") or lookup.DEFAULT_LIMIT)
    except ValueError:
        limit = lookup.DEFAULT_LIMIT
    return {
        "query": lookup.clean_query(request.GET.get("q", "")),
        "system": system,
        "limit": limit,
        "billable_only": request.GET.get("billable") in ("1", "on", "true"),
    }


@require_GET
def lookup_view(request):
    params = _params(request)
    result = lookup.look_up(
        request.user,
        params["query"],
        system=params["system"],
        limit=params["limit"],
        billable_only=params["billable_only"],
    )
    context = {"result": result, "systems": CodeSystem.choices, **params}
    return render(request, "coding/lookup.html", context)


@require_GET
def lookup_results_view(request):
    params = _params(request)
    result = lookup.look_up(
        request.user,
        params["query"],
        system=params["system"],
        limit=params["limit"],
        billable_only=params["billable_only"],
    )
    if request.GET.get("format") == "json":
        return JsonResponse(result.as_json())
    return render(request, "coding/lookup_results.html", {"result": result, **params})
