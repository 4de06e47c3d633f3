"""The `recordroom` console script and background work."""

import pytest

from recordroom.testing import run_recordroom


def test_the_console_script_migrates_loads_the_demo_once_and_verifies(isolated_env):
    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    first = run_recordroom(isolated_env, "demo", "--patients", "0")
    assert "8 created" in first.stdout
    assert "recordroom-demo-2026" in first.stdout
    assert "Demo FHIR API client: created." in first.stdout
    second = run_recordroom(isolated_env, "demo", "--patients", "0")
    assert "0 created, 8 already there" in second.stdout
    assert "Demo FHIR API client" not in second.stdout
    verify = run_recordroom(isolated_env, "audit", "verify")
    # 16 rows for the eight accounts (provisioned, roles) and one for the API client.
    assert "Audit trail intact: 17 rows verified." in verify.stdout


def test_hyphenated_command_names_work(isolated_env):
    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    result = run_recordroom(isolated_env, "sync-roles")
    assert "Synced 9 roles" in result.stdout


def test_the_worker_runs_queued_tasks(isolated_env):
    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    enqueue = (
        "from recordroom.tasks import verify_audit_trail;print(verify_audit_trail.enqueue().id)"
    )
    task_id = run_recordroom(isolated_env, "shell", "-v", "0", "-c", enqueue).stdout.strip()
    run_recordroom(isolated_env, "worker", "--batch")
    check = (
        "from recordroom.tasks import verify_audit_trail;"
        f"r = verify_audit_trail.get_result('{task_id}'); print(r.status, r.return_value)"
    )
    out = run_recordroom(isolated_env, "shell", "-v", "0", "-c", check).stdout
    assert out.startswith("SUCCESSFUL"), out
    assert "'ok': True" in out


@pytest.mark.django_db
def test_tasks_run_immediately_in_tests():
    from recordroom.tasks import verify_audit_trail

    result = verify_audit_trail.enqueue()
    assert result.status == "SUCCESSFUL"
    assert result.return_value["ok"] is True


def test_add_user_creates_an_audited_account_and_refuses_bad_input(isolated_env, tmp_path):
    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    secret = tmp_path / "pw"
    secret.write_text("a-long-and-unusual-passphrase\n")
    ok = run_recordroom(
        isolated_env,
        "add-user",
        "jdoe",
        "--role",
        "him_administrator",
        "--first-name",
        "Jane",
        "--last-name",
        "Doe",
        "--password-file",
        str(secret),
    )
    assert "Created jdoe (him_administrator)" in ok.stdout
    secret.write_text("123")
    weak = run_recordroom(
        isolated_env,
        "add-user",
        "weak",
        "--role",
        "coder",
        "--first-name",
        "W",
        "--last-name",
        "X",
        "--password-file",
        str(secret),
        check=False,
    )
    assert weak.returncode != 0
    assert "too short" in weak.stderr
    verify = run_recordroom(isolated_env, "audit", "verify")
    assert "intact: 2 rows" in verify.stdout
