"""Background tasks of the FHIR layer (django-tasks: immediate in tests, the
``recordroom worker`` process in production)."""

from django_tasks import task

# A client polls its export's status URL while the job waits in the queue, so it goes
# ahead of background work queued in bulk (chart analysis after an import or the demo
# load, thousands of tasks), which no one is waiting on.
BULK_EXPORT_PRIORITY = 50


@task(priority=BULK_EXPORT_PRIORITY)
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
