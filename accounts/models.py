import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class CheckDigit(models.TextChoices):
    LUHN = "luhn", "Luhn (mod 10)"
    MOD11 = "mod11", "ISO 7064 mod 11-2"
    NONE = "none", "No check digit"


class Facility(models.Model):
    """A hospital or clinic of the organisation. Each assigns its own medical record
    numbers; the format is policy (data), never reused."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(max_length=16, unique=True)
    name = models.CharField(max_length=200)
    mrn_prefix = models.CharField(max_length=8, blank=True)
    mrn_digits = models.PositiveSmallIntegerField(default=7)
    mrn_check_digit = models.CharField(
        max_length=8, choices=CheckDigit.choices, default=CheckDigit.LUHN
    )
    mrn_next = models.PositiveBigIntegerField(
        default=1, help_text="The next sequence number to assign; only ever increases."
    )
    bed_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_facility"
        verbose_name_plural = "facilities"

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person (or system account) who signs in. Roles are the user's groups."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    is_system_account = models.BooleanField(
        default=False, help_text="An integration account: API only, never the web pages."
    )
    facilities = models.ManyToManyField(
        Facility,
        blank=True,
        related_name="staff",
        help_text="Facilities whose patients this user works with.",
    )
    npi = models.CharField(
        "NPI", max_length=10, blank=True, help_text="Clinicians' National Provider Identifier."
    )

    class Meta:
        db_table = "accounts_user"

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username
