"""Background tasks of the project itself (each app keeps its own in <app>/tasks.py)."""

from django_tasks import task

from audit.verify import verify_chain


@task()
def verify_audit_trail() -> dict:
    """Walk the audit hash chain off the request path (nightly, or on demand)."""
    result = verify_chain()
    return {"ok": result.ok, "rows": result.rows_checked, "broken_seq": result.broken_seq}
