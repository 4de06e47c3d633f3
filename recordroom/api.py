"""The workflow API (django-ninja), documented at /api/docs. Each app adds a router."""

from django.core.exceptions import PermissionDenied
from ninja import NinjaAPI
from ninja.security import django_auth

from audit.api import router as audit_router
from recordroom.api_me import router as me_router

api = NinjaAPI(
    title="RecordRoom API",
    version="1",
    description="Workflow API of RecordRoom. Every call is checked against the caller's role and audited.",
    auth=django_auth,
    urls_namespace="api",
)
api.add_router("/me", me_router)
api.add_router("/audit", audit_router)


@api.exception_handler(PermissionDenied)
def _permission_denied(request, exc):
    # Refusals are audited where they are decided (accounts.access.require_permission).
    return api.create_response(request, {"detail": "Not allowed."}, status=403)
