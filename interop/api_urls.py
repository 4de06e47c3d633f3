"""The FHIR REST API's URLs under /fhir/ (bulk export and SMART discovery come first,
from interop.bulk_urls)."""

from django.urls import re_path

from interop import api_views

TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,39})"
ID = r"(?P<fhir_id>[A-Za-z0-9\-.]{1,64})"

app_name = "fhir"

urlpatterns = [
    re_path(r"^metadata/?$", api_views.metadata_view, name="metadata"),
    re_path(r"^$", api_views.bundle_view, name="bundle"),
    re_path(r"^Patient/" + ID + r"/\$everything/?$", api_views.everything_view, name="everything"),
    re_path(r"^" + TYPE + r"/?$", api_views.type_view, name="type"),
    re_path(r"^" + TYPE + r"/_search/?$", api_views.search_post_view, name="search"),
    re_path(r"^" + TYPE + "/" + ID + r"/?$", api_views.instance_view, name="instance"),
    re_path(r"^" + TYPE + "/" + ID + r"/_history/?$", api_views.history_view, name="history"),
    re_path(
        r"^" + TYPE + "/" + ID + r"/_history/(?P<version_id>[A-Za-z0-9\-.]{1,64})/?$",
        api_views.vread_view,
        name="vread",
    ),
    re_path(r"^(?P<rest>.*)$", api_views.unknown_view, name="unknown"),
]
