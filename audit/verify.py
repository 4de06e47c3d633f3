"""Walking the hash chain of the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent


@dataclass
class VerifyResult:
    rows_checked: int
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_chain(
    *, chunk_size: int = 5000, progress: Callable[[int], None] | None = None
) -> VerifyResult:
    """Recompute every row's hash in sequence and name the first row that does not fit:
    altered content, a broken link to the previous row, or a missing row."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    latest = None
    step_back = dt.timedelta(0)
    while True:
        rows = list(AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq")[:chunk_size])
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(checked, expected_seq, f"row {expected_seq} is missing")
            if row.prev_hash != expected_prev:
                return VerifyResult(checked, row.seq, "its link to the previous row does not match")
            if row.compute_hash() != row.row_hash:
                return VerifyResult(checked, row.seq, "its content does not match its hash")
            if latest is None or row.occurred_at > latest:
                latest = row.occurred_at
            else:
                step_back = max(step_back, latest - row.occurred_at)
            expected_prev = row.row_hash
            expected_seq += 1
            checked += 1
        last_seq = rows[-1].seq
        if progress:
            progress(len(rows))
    head = AuditChainHead.objects.filter(pk=1).first()
    if head and head.last_seq != checked:
        return VerifyResult(
            checked, checked + 1, f"the chain head says {head.last_seq} rows, found {checked}"
        )
    if head and checked and head.last_hash != expected_prev:
        return VerifyResult(checked, checked, "the last row's hash differs from the chain head")
    # Date searches trust the head's bound on the clock; an understated one hides events.
    if head and head.max_step_back < step_back:
        return VerifyResult(
            checked, checked, "the chain head understates how far the clock stepped back"
        )
    return VerifyResult(checked)
