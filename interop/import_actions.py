"""The import's doors: importing files and bundles, and the quarantine of rejected
units (list, open, replay, dismiss).

Each checks its permission first (``interop.import`` to import,
``interop.manage_import_errors`` for the quarantine; a refusal is audited), then works.
Importing writes one audit event per accepted unit — for NDJSON, per batch of lines
written together (up to ``BATCH_LINES``) — with the ids of the patients it touched
(never names) and the counts; a rejected unit is audited alone as it is quarantined.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.access import require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Purpose
from interop import outcome as oo
from interop.importer import (
    DEFAULT_ORDER,
    TYPE_ORDER,
    ImportContext,
    RunCache,
    UnitResult,
    ValidationWorker,
    _Unit,
    collecting_between_batches,
    import_unit,
    import_units,
    max_bundle_bytes,
)
from interop.models import ImportUnit, UnitStatus
from interop.permissions import InteropPermission
from patients.access import facility_ids
from recordroom import clock

_TYPE_HINT = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')


@dataclass
class RefusedUnit:
    source: str
    position: str
    reason: str
    public_id: str


@dataclass
class ImportResult:
    """What an import did: per resource type, how many were created, updated, left
    unchanged and refused; the units accepted and refused."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    units_accepted: int = 0
    units_refused: int = 0
    refused: list[RefusedUnit] = field(default_factory=list)
    results: list[UnitResult] = field(default_factory=list)
    warnings: int = 0
    # Units that waited for a reference and were tried again after the rest.
    retried: int = 0
    keep_results: bool = True

    def add(self, result: UnitResult, source: str, position: str) -> None:
        if result.accepted:
            self.units_accepted += 1
            self.warnings += len(result.warnings)
            for rtype, counter in result.counts.items():
                self.counts[rtype].update(counter)
        else:
            self.units_refused += 1
            types = result.resource_types or Counter({"unknown": 1})
            for rtype, number in types.items():
                self.counts[rtype]["refused"] += number
            self.refused.append(
                RefusedUnit(
                    source=source,
                    position=position,
                    reason=result.reason,
                    public_id=str(result.unit.public_id) if result.unit else "",
                )
            )
        if self.keep_results or not result.accepted:
            self.results.append(result)

    def totals(self) -> Counter:
        total = Counter()
        for counter in self.counts.values():
            total.update(counter)
        return total


def import_facility(acting_user, code: str | None) -> Facility:
    """The facility imported patients are registered at: the one named, else the
    importing account's first facility."""
    if code:
        facility = Facility.objects.filter(code=code).first()
        if facility is None:
            raise oo.FhirError(
                422, oo.Issue("error", oo.NOT_FOUND, f"There is no facility with code {code!r}.")
            )
        return facility
    ids = sorted(facility_ids(acting_user)) if acting_user is not None else []
    facility = Facility.objects.filter(pk__in=ids).order_by("pk").first() if ids else None
    if facility is None:
        raise oo.FhirError(
            422,
            oo.Issue(
                "error",
                oo.PROCESSING,
                "The importing account works at no facility: give it one, or name the "
                "facility (--facility CODE).",
            ),
        )
    return facility


# --- files --------------------------------------------------------------------------------


def _files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".ndjson")
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    return found


def _type_hint(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    match = _TYPE_HINT.search(head)
    return match.group(1).decode() if match else ""


def _file_order(path: Path) -> tuple:
    hint = _type_hint(path)
    # A Bundle carries its own order; lone resources and NDJSON files of the types others
    # reference come first.
    return (TYPE_ORDER.get(hint, DEFAULT_ORDER), str(path))


# NDJSON lines written together: each line stays its own unit (refused alone, nothing of
# it written), but the lines of a batch share one transaction, one ImportUnit row and one
# audit event, and their look-ups are made in bulk.
BATCH_LINES = 5000
BATCH_BYTES = 8 * 1024 * 1024
# Units that waited for a reference are tried again together, up to this many at once.
RETRY_BATCH = 2000
# Validation runs in a second process (ValidationWorker), ahead of the writes, when the
# files to import hold at least WORKER_MIN_BYTES of NDJSON and the machine has more than
# one core: smaller imports are over before a process would start.
WORKER_MIN_BYTES = 4 * 1024 * 1024
# How far ahead: the lines and bytes of WORKER_AHEAD full batches beyond the one being
# written. Batches of different types cost the two processes very differently
# (Observations cheap to validate and dear to write, Compositions the reverse), so the
# window must be deep; measured in lines and bytes, not in batches, because the small
# files between the large ones (a batch of a few hundred lines each) and the end-of-file
# steps then do not use it up: counted in batches (three), the importing process still
# waited ~3 s of 34 on validation at the changes of file; in lines, none (bench/README.md).
WORKER_AHEAD = 2


class _Window:
    """The steps read ahead of the writes, with the lines and bytes of their batches
    (end-of-file steps hold none)."""

    def __init__(self) -> None:
        self.steps: deque[tuple] = deque()
        self.lines = self.size = 0

    def __bool__(self) -> bool:
        return bool(self.steps)

    @staticmethod
    def _measure(step: tuple) -> tuple[int, int]:
        units = step[1] or []
        return len(units), sum(len(unit.raw) for unit in units)

    def push(self, step: tuple) -> None:
        lines, size = self._measure(step)
        self.steps.append((step, lines, size))
        self.lines += lines
        self.size += size

    def pop(self) -> tuple:
        step, lines, size = self.steps.popleft()
        self.lines -= lines
        self.size -= size
        return step

    def full(self) -> bool:
        """As many lines or bytes as the batch being written and WORKER_AHEAD more."""
        batches = WORKER_AHEAD + 1
        return self.lines >= batches * BATCH_LINES or self.size >= batches * BATCH_BYTES


def _units_of(path: Path, channel_limit: int) -> Iterator[tuple[bytes, str, bool]]:
    """(raw, position, too_large) of each unit in a file, read without holding more than
    one unit in memory: a line of an NDJSON file, or the whole of a JSON file."""
    if path.suffix == ".ndjson":
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                yield line.rstrip(b"\r\n"), f"line {number}", len(line) > channel_limit
        return
    size = path.stat().st_size
    if size > channel_limit:
        yield b"", "", True
        return
    yield path.read_bytes(), "", False


def _batches(
    units: Iterator[tuple[bytes, str, bool]],
) -> Iterator[tuple[list[tuple[bytes, str]], tuple[str, int] | None]]:
    """Group a file's units into batches of at most BATCH_LINES units and BATCH_BYTES
    bytes; a unit too large to read comes alone, as (``[]``, (position, its size))."""
    batch: list[tuple[bytes, str]] = []
    size = 0
    for raw, position, too_large in units:
        if too_large:
            if batch:
                yield batch, None
                batch, size = [], 0
            yield [], (position, len(raw))
            continue
        if batch and (len(batch) >= BATCH_LINES or size + len(raw) > BATCH_BYTES):
            yield batch, None
            batch, size = [], 0
        batch.append((raw, position))
        size += len(raw)
    if batch:
        yield batch, None


def do_import_paths(
    paths: Iterable[str | os.PathLike],
    *,
    acting_user,
    source: str = "import",
    facility: Facility | None = None,
    progress: Callable[[int], None] | None = None,
    allow_unresolved: bool = False,
    keep_results: bool = True,
    validate_in_worker: bool | None = None,
) -> ImportResult:
    """Import files and folders (``*.json`` lone resources or Bundles, ``*.ndjson`` one
    resource a line). Each Bundle, line or lone resource is a unit, written whole or not
    at all; the lines of an NDJSON file are written in batches (one transaction, one
    ImportUnit row and one audit event listing the patients for up to BATCH_LINES
    lines), a refused line being left out of its batch and quarantined alone. Units
    whose only problem is a reference to something not yet imported are retried after
    the rest; what still cannot be resolved is quarantined.

    ``allow_unresolved`` (``import-fhir --allow-unresolved``), for loading reference
    material: a reference that cannot be resolved is kept as written, with a warning in
    the unit's outcome, unless RecordRoom needs it to place the resource (its
    patient/subject or its encounter). ``keep_results=False`` keeps only the counts and
    the refused units (memory stays flat on a large import). ``validate_in_worker``:
    validate in a second process while this one writes (None: when the NDJSON files
    are large enough and the machine has a second core); what is refused, and why, is
    the same either way."""
    require_permission(
        acting_user, InteropPermission.IMPORT, action=Action.CREATE, object_type="import_unit"
    )
    facility = facility or import_facility(acting_user, None)
    result = ImportResult(keep_results=keep_results)
    limit = max_bundle_bytes("command")
    cache = RunCache()
    deferred: list[_Waiting] = []

    def run(units: list[_Unit], ctx: ImportContext, last_try: bool, first: bool) -> None:
        import_units(units, ctx, defer_dangling=not last_try)
        fresh: list[_Waiting] = []
        for unit in units:
            label = unit.source_label or ctx.source_label
            if unit.result.deferred:
                waiting = _Waiting(
                    unit.raw,
                    dataclasses.replace(ctx, source_label=label),
                    unit.position,
                    unit.result.keys,
                    unit.result.waiting_for,
                )
                fresh.append(waiting)
            else:
                result.add(unit.result, label, unit.position)
            if progress is not None and first:
                progress(sum(unit.result.resource_types.values()) or 1)
        deferred.extend(fresh)
        if first:
            result.retried += len(fresh)

    def retry(last_try: bool) -> None:
        waiting = list(deferred)
        deferred.clear()
        for group_ctx, group in _by_namespace(waiting):
            for start in range(0, len(group), RETRY_BATCH):
                units = [
                    _Unit(raw=raw, position=position, source_label=label, validated=True)
                    for raw, position, label in group[start : start + RETRY_BATCH]
                ]
                run(units, group_ctx, last_try=last_try, first=False)

    files = sorted(_files(paths), key=_file_order)
    if validate_in_worker is None:
        ndjson = sum(p.stat().st_size for p in files if p.suffix == ".ndjson")
        validate_in_worker = ndjson >= WORKER_MIN_BYTES and (os.cpu_count() or 1) > 1

    def steps() -> Iterator[tuple]:
        """(context, units or None, the too-large unit or None) for each batch of each
        file, then (context, None, None) at the end of the file."""
        for path in files:
            ctx = ImportContext(
                acting_user=acting_user,
                facility=facility,
                source=source or "import",
                channel="command",
                source_label=path.name,
                allow_unresolved=allow_unresolved,
                cache=cache,
            )
            for batch, too_large in _batches(_units_of(path, limit)):
                if too_large is not None:
                    yield ctx, None, (path, too_large)
                    continue
                units = [_Unit(raw=raw, position=position) for raw, position in batch]
                yield ctx, units, None
            yield ctx, None, None

    with collecting_between_batches() as batch_done:
        worker = ValidationWorker() if validate_in_worker else None
        ahead = _Window()

        def write(step: tuple) -> None:
            _import_step(step, result, run, retry, deferred)
            if step[1] is not None:  # end-of-file steps leave no batch behind
                batch_done()

        try:
            for step in steps():
                if worker is None:
                    write(step)
                    continue
                if step[1] is not None:
                    worker.submit(step[1], step[0])
                ahead.push(step)
                # Written once the lines read ahead fill the window: the batch about to
                # be written and WORKER_AHEAD more (by lines and bytes).
                while ahead.full():
                    write(ahead.pop())
            while ahead:
                write(ahead.pop())
        except BaseException:
            if worker is not None:
                worker.terminate()
            raise
        if worker is not None:
            worker.close()
        # At the end, retry what still waits while that makes progress; then quarantine.
        while deferred:
            before = len(deferred)
            retry(last_try=False)
            batch_done()
            if len(deferred) == before:
                retry(last_try=True)
                break
    return result


def _import_step(step: tuple, result: ImportResult, run, retry, deferred: list) -> None:
    ctx, units, too_large = step
    if too_large is not None:
        path, (position, size) = too_large
        unit_result = import_unit(b"", ctx, position=position, size=size or path.stat().st_size)
        result.add(unit_result, path.name, position)
    elif units is not None:
        run(units, ctx, last_try=False, first=True)
    elif deferred:
        # The end of a file. What waits may be waiting for this file, or for units that
        # wait themselves (an encounter naming a diagnosis whose condition names the
        # encounter: a reference cycle across files). Try it again now, all of a
        # namespace together, so that what references it later in the run finds it
        # instead of waiting in turn.
        retry(last_try=False)


@dataclass(eq=False)
class _Waiting:
    """A unit deferred because a reference could not be resolved yet."""

    raw: bytes
    ctx: ImportContext
    position: str
    keys: set[tuple]
    waiting_for: set[tuple]


def _by_namespace(
    waiting: list[_Waiting],
) -> list[tuple[ImportContext, list[tuple[bytes, str, str]]]]:
    """The waiting units grouped by the namespace they resolve in, in file order, each
    group with a context naming the files it holds."""
    groups: dict[str, tuple[ImportContext, list[tuple[bytes, str, str]]]] = {}
    labels: dict[str, list[str]] = {}
    for item in waiting:
        raw, ctx, position = item.raw, item.ctx, item.position
        groups.setdefault(ctx.source, (ctx, []))[1].append((raw, position, ctx.source_label))
        if ctx.source_label not in labels.setdefault(ctx.source, []):
            labels[ctx.source].append(ctx.source_label)
    return [
        (dataclasses.replace(ctx, source_label=", ".join(labels[name])[:300]), group)
        for name, (ctx, group) in groups.items()
    ]


def do_import_bundle(
    raw_bytes: bytes,
    *,
    acting_user,
    source: str = "import",
    channel: str = "api",
    facility: Facility | None = None,
) -> ImportResult:
    """Import one unit given as bytes (a Bundle or a lone resource)."""
    require_permission(
        acting_user, InteropPermission.IMPORT, action=Action.CREATE, object_type="import_unit"
    )
    facility = facility or import_facility(acting_user, None)
    ctx = ImportContext(
        acting_user=acting_user,
        facility=facility,
        source=source or "import",
        channel=channel,
        source_label=source or channel,
    )
    result = ImportResult()
    result.add(import_unit(raw_bytes, ctx), ctx.source_label, "")
    return result


# --- the quarantine -----------------------------------------------------------------------


def _require_manage(acting_user, unit: ImportUnit | None = None, action=Action.VIEW) -> None:
    require_permission(
        acting_user,
        InteropPermission.MANAGE_IMPORT_ERRORS,
        action=action,
        purpose=Purpose.OPERATIONS,
        object_type="import_unit",
        object_id=str(unit.public_id) if unit else "",
    )


def list_import_errors(acting_user, *, status: str = UnitStatus.REJECTED):
    """The quarantined units, newest first (audited as a search)."""
    _require_manage(acting_user, action=Action.SEARCH)
    if status not in UnitStatus.values:
        status = UnitStatus.REJECTED
    record_event(
        acting_user,
        Action.SEARCH,
        purpose=Purpose.OPERATIONS,
        object_type="import_unit",
        detail={"status": status},
    )
    return (
        ImportUnit.objects.filter(status=status)
        .defer("raw")
        .select_related("received_by", "resolved_by")
        .order_by("-received_at", "-pk")
    )


def access_import_unit(acting_user, public_id) -> ImportUnit:
    """One unit with its raw input (which may hold patient data): audited view."""
    _require_manage(acting_user)
    try:
        unit = ImportUnit.objects.select_related("received_by", "resolved_by", "replay_of").get(
            public_id=public_id
        )
    except (ImportUnit.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such import unit") from None
    record_event(
        acting_user,
        Action.VIEW,
        purpose=Purpose.OPERATIONS,
        object_type="import_unit",
        object_id=str(unit.public_id),
        detail={"status": unit.status},
    )
    return unit


def unit_replays(unit: ImportUnit) -> list[ImportUnit]:
    return list(unit.replays.defer("raw").order_by("-received_at"))


def do_replay_unit(unit: ImportUnit, *, acting_user, raw: bytes | None = None) -> UnitResult:
    """Import a quarantined unit again: as received, or as the administrator corrected
    it (``raw``). On success the unit is marked replayed and the new accepted unit points
    to it; on failure nothing changes and the result carries the new issues."""
    _require_manage(acting_user, unit, action=Action.UPDATE)
    if unit.status != UnitStatus.REJECTED:
        raise ValidationError("Only a rejected unit waiting in quarantine can be replayed.")
    data = bytes(raw) if raw is not None else bytes(unit.raw or b"")
    if not data.strip():
        raise ValidationError(
            "Nothing of this unit was kept (it was too large to hold): import the file again "
            "once it is split, then dismiss this entry."
        )
    facility = import_facility(unit.received_by or acting_user, None)
    ctx = ImportContext(
        acting_user=acting_user,
        facility=facility,
        source=_namespace_of(unit),
        channel="replay",
        source_label=unit.source,
    )
    with transaction.atomic():
        result = import_unit(data, ctx, position=unit.position, quarantine=False, replay_of=unit)
        if result.accepted:
            now = clock.now()
            ImportUnit.objects.filter(pk=unit.pk).update(
                status=UnitStatus.REPLAYED, resolved_at=now, resolved_by=acting_user
            )
            unit.status, unit.resolved_at, unit.resolved_by = UnitStatus.REPLAYED, now, acting_user
    if not result.accepted:
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            object_type="import_unit",
            object_id=str(unit.public_id),
            reason="replay failed; the unit stays in quarantine",
            detail={"corrected": raw is not None, "issues": len(result.issues)},
        )
    return result


def _namespace_of(unit: ImportUnit) -> str:
    """The namespace the unit was received under (``--source``, the API client), so
    that a replay resolves ids as the first import did. Units quarantined before the
    namespace was kept: the client's name for the API, else the command's default."""
    if unit.namespace:
        return unit.namespace
    if unit.channel == "api":
        return unit.source or "api"
    return "import"


def do_dismiss_unit(unit: ImportUnit, *, acting_user, reason: str) -> ImportUnit:
    """Close a quarantined unit without importing it (a duplicate, test data, a message
    the sender will resend): the raw input and its issues stay, with who and why."""
    _require_manage(acting_user, unit, action=Action.UPDATE)
    reason = " ".join((reason or "").split())
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why this unit is dismissed (at least 5 characters)."})
    if len(reason) > 250:
        raise ValidationError({"reason": "At most 250 characters."})
    if unit.status != UnitStatus.REJECTED:
        raise ValidationError("Only a rejected unit waiting in quarantine can be dismissed.")
    with transaction.atomic():
        now = clock.now()
        updated = ImportUnit.objects.filter(pk=unit.pk, status=UnitStatus.REJECTED).update(
            status=UnitStatus.DISMISSED,
            resolved_at=now,
            resolved_by=acting_user,
            reason=f"Dismissed: {reason}"[:300],
        )
        if not updated:
            raise ValidationError("Only a rejected unit waiting in quarantine can be dismissed.")
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            object_type="import_unit",
            object_id=str(unit.public_id),
            reason=reason,
            detail={"status": UnitStatus.DISMISSED},
        )
    unit.status, unit.resolved_at, unit.resolved_by = UnitStatus.DISMISSED, now, acting_user
    unit.reason = f"Dismissed: {reason}"[:300]
    return unit
