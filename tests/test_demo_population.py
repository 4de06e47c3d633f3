"""The synthetic demo department: deterministic, through the real actions, every status."""

import pytest
from django.core.management import call_command
from django.db import transaction

from audit.verify import verify_chain
from documents.models import Document
from encounters.models import Encounter
from patients.models import Patient
from recordroom.demo_data.population import load_population

pytestmark = pytest.mark.django_db


def _people():
    return sorted(
        (p.family_name, p.given_name, p.birth_date.isoformat()) for p in Patient.objects.all()
    )


class _Rollback(Exception):
    pass


def _load_and_forget(seed):
    """Load a small department, note who is in it, and roll it all back."""
    try:
        with transaction.atomic():
            load_population(6, seed=seed)
            people = _people()
            raise _Rollback
    except _Rollback:
        return people


def test_the_same_seed_makes_the_same_people():
    call_command("demo", "--patients", "0", "--quiet-logins")
    first, again, other = _load_and_forget(7), _load_and_forget(7), _load_and_forget(8)
    assert len(first) == 6
    assert first == again
    assert first != other
    assert Patient.objects.count() == 0


def test_the_demo_fills_every_part_of_the_record_and_keeps_the_chain():
    call_command("demo", "--patients", "40", "--seed", "11", "--quiet-logins")
    assert Patient.objects.count() == 40
    assert Patient.objects.exclude(restriction="").exists(), "restricted cases"
    assert Encounter.objects.filter(encounter_class="IMP").exists()
    assert (
        Encounter.objects.filter(status="in-progress").exists()
        or Encounter.objects.filter(status="finished").exists()
    )
    assert Document.objects.filter(status="final").exists()
    assert verify_chain().ok


def test_loading_again_changes_nothing(capsys):
    call_command("demo", "--patients", "3", "--quiet-logins")
    call_command("demo", "--patients", "3", "--quiet-logins")
    assert Patient.objects.count() == 3
    assert "already loaded" in capsys.readouterr().out
