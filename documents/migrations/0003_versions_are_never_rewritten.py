"""Make document versions and status changes unrewritable in the database itself.

A version's content (body, attachment and its hash, number, kind, reason, who and when)
never changes once written, and its signature (or a filed version's hash) is written
once: triggers on SQLite and PostgreSQL refuse an UPDATE that would change them, so
neither a bug nor a console session can rewrite what was signed. Status-change rows are
never updated at all. DELETE is left to the foreign keys (PROTECT) and to the lawful
destruction the lifecycle app will perform under a retention schedule.
"""

from django.db import migrations

CONTENT = [
    "body",
    "number",
    "kind",
    "document_id",
    "attachment",
    "attachment_name",
    "attachment_content_type",
    "attachment_size",
    "attachment_sha256",
    "reason",
    "created_by_id",
    "created_at",
]
SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT)
PG_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CONTENT)

SQLITE = [
    f"""CREATE TRIGGER documents_version_content_fixed BEFORE UPDATE ON documents_version
       WHEN {SQLITE_CHANGED}
       BEGIN SELECT RAISE(ABORT, 'document versions are never rewritten: UPDATE refused'); END""",
    """CREATE TRIGGER documents_version_signed_once BEFORE UPDATE ON documents_version
       WHEN (OLD.signed_at IS NOT NULL AND (NEW.signed_at IS NOT OLD.signed_at
             OR NEW.signed_by_id IS NOT OLD.signed_by_id))
         OR (OLD.content_sha256 != '' AND NEW.content_sha256 IS NOT OLD.content_sha256)
       BEGIN SELECT RAISE(ABORT, 'a signature is written once: UPDATE refused'); END""",
    """CREATE TRIGGER documents_statuschange_no_update BEFORE UPDATE ON documents_statuschange
       BEGIN SELECT RAISE(ABORT, 'status changes are never rewritten: UPDATE refused'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS documents_version_content_fixed",
    "DROP TRIGGER IF EXISTS documents_version_signed_once",
    "DROP TRIGGER IF EXISTS documents_statuschange_no_update",
]
POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION documents_version_guard() RETURNS trigger AS $$
       BEGIN
         IF {PG_CHANGED} THEN
           RAISE EXCEPTION 'document versions are never rewritten: UPDATE refused';
         END IF;
         IF (OLD.signed_at IS NOT NULL AND (NEW.signed_at IS DISTINCT FROM OLD.signed_at
             OR NEW.signed_by_id IS DISTINCT FROM OLD.signed_by_id))
           OR (OLD.content_sha256 <> '' AND NEW.content_sha256 IS DISTINCT FROM OLD.content_sha256)
         THEN
           RAISE EXCEPTION 'a signature is written once: UPDATE refused';
         END IF;
         RETURN NEW;
       END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER documents_version_guard BEFORE UPDATE ON documents_version
       FOR EACH ROW EXECUTE FUNCTION documents_version_guard()""",
    """CREATE OR REPLACE FUNCTION documents_statuschange_refuse() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'status changes are never rewritten: UPDATE refused'; END;
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER documents_statuschange_no_update BEFORE UPDATE ON documents_statuschange
       FOR EACH ROW EXECUTE FUNCTION documents_statuschange_refuse()""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS documents_statuschange_no_update ON documents_statuschange",
    "DROP FUNCTION IF EXISTS documents_statuschange_refuse()",
    "DROP TRIGGER IF EXISTS documents_version_guard ON documents_version",
    "DROP FUNCTION IF EXISTS documents_version_guard()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(
                f"No document triggers for {schema_editor.connection.vendor}; "
                "RecordRoom supports SQLite and PostgreSQL."
            )
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("documents", "0002_seed_loinc_document_types")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}),
        )
    ]
