import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person (or system account) who signs in. Roles are the user's groups."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    is_system_account = models.BooleanField(
        default=False, help_text="An integration account: API only, never the web pages."
    )

    class Meta:
        db_table = "accounts_user"

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username
