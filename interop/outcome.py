"""OperationOutcome: how every FHIR error and warning is reported (import, API, OAuth,
bulk export).

``Issue`` is one issue; ``operation_outcome(issues)`` builds the resource;
``FhirError(status, issues)`` is raised where an interaction fails and is turned into an
OperationOutcome response with that HTTP status.

Diagnostics never carry patient data (names, identifiers' values): they name the
resource (type, id, entry index) and the element (``expression``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The issue-type codes of http://hl7.org/fhir/ValueSet/issue-type used in RecordRoom.
INVALID = "invalid"
STRUCTURE = "structure"
REQUIRED = "required"
VALUE = "value"
INVARIANT = "invariant"
SECURITY = "security"
LOGIN = "login"
FORBIDDEN = "forbidden"
PROCESSING = "processing"
NOT_SUPPORTED = "not-supported"
DUPLICATE = "duplicate"
NOT_FOUND = "not-found"
CONFLICT = "conflict"
TOO_LONG = "too-long"
TOO_COSTLY = "too-costly"
EXCEPTION = "exception"
INFORMATIONAL = "informational"
INCOMPLETE = "incomplete"

SEVERITIES = ("fatal", "error", "warning", "information")


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    severity: str = "error"
    code: str = PROCESSING
    diagnostics: str = ""
    expression: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown issue severity {self.severity!r}")
        # Accept a tuple or a lone string for convenience; keep a list.
        expression = self.expression
        if isinstance(expression, str):
            expression = [expression]
        object.__setattr__(self, "expression", [str(e) for e in (expression or [])])

    def as_dict(self) -> dict:
        issue: dict = {"severity": self.severity, "code": self.code}
        if self.diagnostics:
            issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict:
    """The OperationOutcome resource (a dict ready for JSON) for these issues. An
    OperationOutcome needs at least one issue: an empty list gives an informational
    "All OK" issue."""
    issues = list(issues) or [Issue("information", INFORMATIONAL, "All OK")]
    return {"resourceType": "OperationOutcome", "issue": [i.as_dict() for i in issues]}


def issues_from_outcome(outcome: dict) -> list[Issue]:
    """The issues of a stored OperationOutcome dict (for display)."""
    result = []
    for raw in (outcome or {}).get("issue", []) or []:
        severity = raw.get("severity", "error")
        if severity not in SEVERITIES:
            severity = "error"
        result.append(
            Issue(
                severity,
                raw.get("code", PROCESSING),
                raw.get("diagnostics", ""),
                list(raw.get("expression", []) or []),
            )
        )
    return result


class FhirError(Exception):
    """A FHIR interaction failed: ``status`` is the HTTP status, ``issues`` the
    OperationOutcome's issues. ``str()`` gives the first issue's diagnostics."""

    def __init__(self, status: int, issues: list[Issue] | Issue | str) -> None:
        if isinstance(issues, Issue):
            issues = [issues]
        elif isinstance(issues, str):
            issues = [Issue("error", PROCESSING, issues)]
        self.status = int(status)
        self.issues: list[Issue] = list(issues) or [Issue("error", PROCESSING, "Failed")]
        super().__init__(self.issues[0].diagnostics or self.issues[0].code)

    @property
    def outcome(self) -> dict:
        return operation_outcome(self.issues)

    def as_outcome(self) -> dict:
        return self.outcome
