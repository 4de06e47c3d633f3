"""Browser-test fixtures: the real RecordRoom server in a subprocess, and Chromium.

The server runs `recordroom runserver` on a free loopback port with a database of its
own (a temporary SQLite file, or a new PostgreSQL database when DATABASE_URL is set),
migrated and loaded with the demo users. The tests talk to it over HTTP only; they never
touch the ORM, so they need no `db` fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from recordroom.testing import run_recordroom, subprocess_env

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_NAMES = {
    "login",
    "home-technician",
    "home-privacy-officer",
    "audit-trail",
    "register-duplicates",
    "chart",
    "document",
    "restricted",
    "btg-queue",
    "completion-queue",
    "completion-dashboard",
    "completion-rules",
    "reports-dashboard",
    "coding-abstract",
    "coding-queue",
    "roi-queue",
    "roi-request",
    "roi-packet",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"the server exited ({server.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url}/healthz:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """Like the root `isolated_env`, but for the whole session."""
    env = subprocess_env(tmp_path_factory.mktemp("e2e-server"))
    url = env.get("DATABASE_URL") if os.environ.get("DATABASE_URL") else None
    yield env
    if url:  # the server has stopped by now (live_server_url depends on this fixture)
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def live_server_url(server_env, tmp_path_factory):
    """Base URL of a migrated RecordRoom with the demo users, stopped at the end."""
    run_recordroom(server_env, "migrate", "--no-input", "-v", "0")
    # As `make run` does: production's manifest storage needs collected files (and
    # RECORDROOM_STATIC_FROM_APPS alone leaves {% static %} without a manifest).
    run_recordroom(server_env, "collectstatic", "--no-input", "-v", "0")
    run_recordroom(server_env, "codes", "load", timeout=600)
    run_recordroom(server_env, "demo", "--patients", "25", timeout=600)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("e2e-log") / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("recordroom")),
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
            ],
            env=server_env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser, live_server_url):
    """Open pages, each in a fresh browser context (own cookies), closed after the test."""
    contexts = []

    def _new_page(width=1280, height=800):
        context = browser.new_context(
            base_url=live_server_url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="session")
def authenticators():
    """The TOTP keys of the accounts whose authenticator a test enrolled in this session
    (user name → base32 key, and the last time step used), so a later log-in of the same
    account can answer the code. A test that resets an authenticator removes its entry."""
    return {}


@pytest.fixture(scope="session")
def screenshot():
    """Save a full-page PNG into RECORDROOM_TEST_ARTIFACTS (default test-artifacts/), and
    into docs/screenshots/ too when RECORDROOM_UPDATE_SCREENSHOTS=1."""
    artifacts = Path(os.environ.get("RECORDROOM_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    update_docs = os.environ.get("RECORDROOM_UPDATE_SCREENSHOTS") == "1"

    def _save(page, name: str, *, full_page: bool = True) -> Path:
        assert name in SCREENSHOT_NAMES, name
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if update_docs:
            docs = ROOT / "docs" / "screenshots"
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, docs / path.name)
        return path

    return _save
