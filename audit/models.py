"""The audit trail: one append-only, hash-chained table of every access to protected
data and every security event (HIPAA 164.312(b) audit controls).

Rows are written only through :func:`audit.actions.record_event`. The database refuses
UPDATE and DELETE on ``audit_auditevent`` (triggers installed by migration 0002), and each
row stores the SHA-256 of its content chained to the previous row's hash, so a change
made behind the triggers' back is found by ``recordroom audit verify``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64


class Action(models.TextChoices):
    VIEW = "view", "View"
    SEARCH = "search", "Search"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    SIGN = "sign", "Sign"
    PRINT = "print", "Print"
    EXPORT = "export", "Export"
    DISCLOSE = "disclose", "Disclose"
    MERGE = "merge", "Merge"
    LOGIN = "login", "Log-in"
    LOGIN_FAILED = "login_failed", "Failed log-in"
    LOCKOUT = "lockout", "Account locked"
    LOGOUT = "logout", "Log-out"
    MFA = "mfa", "Multi-factor authentication"
    PERMISSION_CHANGE = "permission_change", "Permission change"
    ACCOUNT_CHANGE = "account_change", "Account change"
    BREAK_THE_GLASS = "break_the_glass", "Break-the-glass"
    SECURITY = "security", "Security event"


class Outcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"


class Purpose(models.TextChoices):
    """Purpose of use, after the HL7 PurposeOfUse value set."""

    TREATMENT = "TREAT", "Treatment"
    PAYMENT = "HPAYMT", "Payment"
    OPERATIONS = "HOPERAT", "Health care operations"
    PATIENT_REQUEST = "PATRQT", "Patient request"
    EMERGENCY = "ETREAT", "Emergency treatment"
    LEGAL = "HLEGAL", "Legal"
    PUBLIC_HEALTH = "PUBHLTH", "Public health"
    RESEARCH = "HRESCH", "Research"
    SYSTEM = "SYSADMIN", "System administration"
    SECURITY = "HSYSADMIN", "Security administration"
    COMPLIANCE = "COMPL", "Compliance review"


class AuditChainHead(models.Model):
    """One row holding the newest sequence number and hash. Writers lock it, so the
    chain is appended strictly in order on PostgreSQL as well as SQLite.

    It also keeps the latest ``occurred_at`` so far and the furthest any event has been
    dated below it (a clock stepped back: an NTP correction, skew between application
    servers). No event is dated more than ``max_step_back`` before an event written
    earlier, which lets a date filter bound ``seq`` too (``audit.access``)."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    max_occurred_at = models.DateTimeField(null=True, blank=True)
    max_step_back = models.DurationField(default=dt.timedelta(0))

    class Meta:
        db_table = "audit_chainhead"

    def __str__(self) -> str:
        return f"audit chain head at row {self.last_seq}"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, help_text="Position in the hash chain, from 1.")
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_roles = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.ALLOWED)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, blank=True)
    # The patient's public id, not a foreign key: the trail must outlive a record that is
    # lawfully destroyed, and must never cascade.
    patient_id = models.UUIDField(null=True, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=300, blank=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_auditevent"
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor_username", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["patient_id", "-seq"], name="audit_patient_seq"),
            models.Index(fields=["action", "-seq"], name="audit_action_seq"),
            models.Index(fields=["action", "outcome", "-seq"], name="audit_action_outcome_seq"),
            models.Index(fields=["outcome", "-seq"], name="audit_outcome_seq"),
        ]

    def __str__(self) -> str:
        return f"audit #{self.seq} {self.action} {self.outcome}"

    def canonical_content(self) -> str:
        """The row's content as hashed: every column but the hashes, in a fixed form."""
        return json.dumps(
            {
                "seq": self.seq,
                "occurred_at": self.occurred_at.isoformat(timespec="microseconds"),
                "actor": self.actor_id,
                "actor_username": self.actor_username,
                "actor_roles": self.actor_roles,
                "action": self.action,
                "outcome": self.outcome,
                "purpose": self.purpose,
                "patient_id": str(self.patient_id) if self.patient_id else None,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "reason": self.reason,
                "detail": self.detail,
                "client_ip": self.client_ip,
                "user_agent": self.user_agent,
                "path": self.path,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )

    def compute_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.prev_hash.encode("ascii"))
        digest.update(self.canonical_content().encode("ascii"))
        return digest.hexdigest()
