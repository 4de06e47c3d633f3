from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from recordroom.home import panels_for


def home_view(request):
    return render(request, "recordroom/home.html", {"role_panels": panels_for(request.user)})


@login_not_required
@require_GET
def healthz_view(request):
    return JsonResponse({"status": "ok"})


def permission_denied_view(request, exception=None):
    # The refusal was audited where it was decided (accounts.access.require_permission).
    return render(
        request,
        "recordroom/error.html",
        {
            "title": "Not allowed",
            "message": "Your role does not give access to this page. The attempt has been recorded.",
        },
        status=403,
    )


def not_found_view(request, exception=None):
    return render(
        request,
        "recordroom/error.html",
        {
            "title": "Not found",
            "message": "There is nothing here, or it is not yours to see.",
        },
        status=404,
    )


def server_error_view(request):
    return render(
        request,
        "recordroom/error.html",
        {
            "title": "Something went wrong",
            "message": "RecordRoom could not finish this request. Nothing was half-saved; try again, and tell the HIM administrator if it keeps happening.",
        },
        status=500,
    )


def bad_request_view(request, exception=None):
    return render(
        request,
        "recordroom/error.html",
        {
            "title": "Bad request",
            "message": "RecordRoom could not read this request.",
        },
        status=400,
    )
