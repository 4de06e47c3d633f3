"""Background tasks of the FHIR layer (django-tasks: immediate in tests, the
``recordroom worker`` process in production)."""

from django_tasks import task


@task()
def run_bulk_export(job_public_id: str) -> str:
    """Write the NDJSON files of one bulk export job."""
    from interop.bulk import run_export

    return run_export(job_public_id)


@task()
def delete_expired_bulk_exports() -> int:
    """Delete the files of bulk exports past their expiry (queued with every new
    export, so no scheduler is needed)."""
    from interop.bulk import delete_expired_exports

    return delete_expired_exports()
