"""Release of information in the demo department: requests in every state, through the
real actions (letters, a released packet with its disclosure, a denial)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import Action, AuditEvent
from recordroom import clock
from recordroom.demo_data.population import Generator, load_population
from recordroom.demo_data.roi import load_roi
from roi.models import Disclosure, Letter, LetterKind, Packet, RequestStatus, RoiRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def made(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    call_command("demo", "--patients", "0", "--quiet-logins")
    # The population runs the ROI step itself; stub it there and run it here, where its
    # summary can be checked.
    with mock.patch("recordroom.demo_data.roi.load_roi", lambda generator: {}):
        load_population(10, seed=7)
    return load_roi(Generator(seed=7, today=timezone.localdate(clock.now())))


def test_the_demo_has_requests_in_every_state(made):
    assert "could_not_release" not in made and "could_not_record_disclosure" not in made
    statuses = set(RoiRequest.objects.values_list("status", flat=True))
    assert {
        RequestStatus.LOGGED,
        RequestStatus.PENDED,
        RequestStatus.IN_PROCESS,
        RequestStatus.QC,
        RequestStatus.RELEASED,
        RequestStatus.DENIED,
        RequestStatus.CLOSED,
    } <= statuses
    attorney = RoiRequest.objects.get(requester_type="attorney")
    assert attorney.status == RequestStatus.PENDED
    assert any("signature" in reason for reason in attorney.pend_reasons)
    assert Letter.objects.filter(kind=LetterKind.PEND, request=attorney).exists()
    assert Packet.objects.filter(request__status=RequestStatus.RELEASED).exists()
    assert Disclosure.objects.filter(basis="public_health", accountable=True).exists()
    assert AuditEvent.objects.filter(action=Action.DISCLOSE).exists()


def test_the_demo_loads_just_after_midnight_utc(settings, tmp_path):
    """At 00:30 UTC it is still the day before at the hospital (America/New_York): the
    demo's requests are received on the hospital's date, which intake accepts (the UTC
    date had them received tomorrow, refused as in the future)."""
    import time_machine

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    with time_machine.travel("2026-11-24 00:30Z", tick=False):
        assert timezone.localdate(clock.now()).day == 23
        call_command("demo", "--patients", "0", "--quiet-logins")
        load_population(6, seed=11)
        assert RoiRequest.objects.exists()
        received = set(RoiRequest.objects.values_list("received_at", flat=True))
        assert all(
            timezone.localdate(moment) <= timezone.localdate(clock.now()) for moment in received
        )
