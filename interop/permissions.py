from django.db import models


class InteropPermission(models.TextChoices):
    IMPORT = "interop.import", "Import FHIR data (bundles, NDJSON) into the record"
    MANAGE_IMPORT_ERRORS = (
        "interop.manage_import_errors",
        "See rejected imports, fix their cause and replay them",
    )
    BULK_EXPORT = "interop.bulk_export", "Run FHIR bulk exports of the population"
    MANAGE_CLIENTS = "interop.manage_clients", "Register and revoke API clients (OAuth)"
