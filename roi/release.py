"""Releasing a request, and delivering its packet.

**Release** (:func:`do_release`): only a request ready for it (in process when the
policy asks for no quality check; otherwise after a passed check). In one transaction:
the cover letter (kept as a ``Letter``), the packet (``roi.packets``), the invoice
(``roi.fees``, first release only), a :class:`roi.models.Disclosure` row — accountable
unless the release is for treatment, payment, operations, to the patient or under the
patient's authorization (``roi.disclosure_rules``) — the status *released*, and a
**disclosure** event in the audit trail with the documents, pages and checksum.

A **second release** of the same request is refused with a clear message, unless the
specialist re-releases it explicitly, as a new packet, with a reason (a lost envelope, a
broken download): then a new packet, a new disclosure row and a new disclosure event.

**Electronic delivery**: a time-limited link (a random token, only its SHA-256 kept; it
expires after the policy's ``download_link_days``). The requester opens
``/roi/download/<token>/``, gives the request number and the patient's date of birth,
and gets the PDF; the download is audited and recorded on the packet. Five failed
verifications lock the link (a new one can be made). **Paper**: the packet is marked
printed, then mailed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from audit.actions import record_event
from audit.models import Action, AuditEvent, Outcome, Purpose
from documents import integrity
from recordroom import clock
from roi import disclosure_rules as rules
from roi import fees
from roi.letters import issue_letter
from roi.models import (
    Delivery,
    Disclosure,
    Format,
    LetterKind,
    Packet,
    ReleaseItem,
    RequesterType,
    RequestStatus,
    RoiRequest,
)
from roi.packets import PacketError, build_packet
from roi.permissions import RoiPermission as RP
from roi.processing import (
    REQUEST,
    Refused,
    Rules,
    audit,
    block_reason,
    event,
    find_request,
    locked,
    policy_for,
    ready_to_release,
    refuse,
)

PACKET = "roi.packet"
MAX_FAILED_VERIFICATIONS = 5
ELECTRONIC_DELIVERIES = (Delivery.PORTAL, Delivery.SECURE_EMAIL)

AUDIT_PURPOSE = {
    "treatment": Purpose.TREATMENT,
    "payment": Purpose.PAYMENT,
    "operations": Purpose.OPERATIONS,
    "to_patient": Purpose.PATIENT_REQUEST,
    "authorized": Purpose.PATIENT_REQUEST,
    "judicial": Purpose.LEGAL,
    "law_enforcement": Purpose.LEGAL,
    "public_health": Purpose.PUBLIC_HEALTH,
    "research_waiver": Purpose.RESEARCH,
}


@dataclass
class Released:
    packet: Packet
    token: str  # the download token, shown once (empty for paper)
    disclosure: Disclosure


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(policy) -> tuple[str, str, dt.datetime]:
    token = secrets.token_urlsafe(32)
    return token, _hash(token), clock.now() + dt.timedelta(days=policy.download_link_days)


def electronic(request: RoiRequest) -> bool:
    return request.format == Format.ELECTRONIC and request.delivery in ELECTRONIC_DELIVERIES


def cover_text(request: RoiRequest, *, pages_hint: str = "") -> str:
    recipient = request.requester_name
    if request.requester_organization:
        recipient += f", {request.requester_organization}"
    included = ReleaseItem.objects.filter(request=request, included=True).count()
    excluded = ReleaseItem.objects.filter(request=request, included=False).count()
    paragraphs = [
        f"To: {recipient}",
        f"Re: your request {request.number}, received {request.received_on.isoformat()}.",
        f"Enclosed are the records released in answer to your request: {included} "
        "document(s), listed in the index that follows this letter. Every page is "
        f"numbered with the request number {request.number}.",
    ]
    if excluded:
        paragraphs.append(
            "Some records within the dates or types you asked for were not released: they "
            "were outside what the law or the authorization permits us to disclose, or not "
            "needed for the stated purpose. Where this is a denial of your right of access, "
            "a separate letter explains it and your rights."
        )
    paragraphs.append(
        "Questions about this release may be addressed to the Health Information "
        "Management department, quoting the request number."
    )
    return "\n\n".join(paragraphs)


def _check_items(user, request: RoiRequest) -> None:
    """Nothing outside the approved scope: every included item may still go out."""
    items = list(
        ReleaseItem.objects.filter(request=request, included=True).select_related(
            "document", "document__current_version"
        )
    )
    if not items:
        raise refuse(
            user, request, Action.DISCLOSE, "Nothing is included: there is nothing to release."
        )
    checks = Rules.of(request)
    for item in items:
        blocked = block_reason(item.document, checks)
        if blocked:
            raise refuse(
                user,
                request,
                Action.DISCLOSE,
                f"Document {item.document.public_id} can no longer be released ({blocked}) "
                "Review the items again.",
            )


def do_release(user, public_id, *, rerelease_reason: str = "") -> Released:
    """Release the request (see the module's docstring). ``rerelease_reason``: to send an
    already released request again as a new packet."""
    request = find_request(user, public_id, action=Action.DISCLOSE)
    rerelease_reason = (rerelease_reason or "").strip()
    rerelease = request.status == RequestStatus.RELEASED
    if rerelease and not rerelease_reason:
        first = request.packets.order_by("created_at", "pk").first()
        when = (
            timezone.localtime(request.released_at).strftime("%Y-%m-%d %H:%M")
            if request.released_at
            else ""
        )
        raise refuse(
            user,
            request,
            Action.DISCLOSE,
            f"This request was already released on {when}"
            + (f" (packet of {first.pages} pages)" if first else "")
            + ". To send it again, re-release it as a new packet and give the reason.",
        )
    if not rerelease:
        if rerelease_reason:
            raise ValidationError("Only a released request can be re-released.")
        blocker = ready_to_release(request)
        if blocker:
            raise refuse(user, request, Action.DISCLOSE, blocker)
    else:
        from roi.intake import missing

        # A re-release is a new disclosure: the request must still be valid (e.g. the
        # authorization not revoked or expired since the first release).
        needed = missing(request)
        if needed:
            raise refuse(
                user,
                request,
                Action.DISCLOSE,
                "The request is not valid any more: " + " ".join(r.strip(" –") for r in needed),
            )
    if len(rerelease_reason) > 300:
        raise ValidationError("The reason is too long (300 characters at most).")
    _check_items(user, request)
    policy = policy_for(request)
    authorized = Rules.of(request).authorized
    basis = rules.release_basis(request.requester_type, authorized=authorized)
    accountable = rules.is_accountable(basis)
    try:
        with transaction.atomic():
            request = locked(request)
            changed = (
                request.status != RequestStatus.RELEASED if rerelease else ready_to_release(request)
            )
            if changed:
                raise Refused("The request changed meanwhile; reload it.")
            cover = issue_letter(
                LetterKind.COVER, request.patient, cover_text(request), user, request=request
            )
            with cover.file.open("rb") as handle:
                cover_pdf = handle.read()
            built = build_packet(
                request, cover_pdf=cover_pdf, basis=basis, by=user, parameters=policy.parameters
            )
            packet = built.packet
            token = ""
            if electronic(request):
                token, packet.download_token_hash, packet.download_expires_at = _new_token(policy)
                packet.save(update_fields=["download_token_hash", "download_expires_at"])
            if not rerelease:
                fees.invoice(
                    request,
                    pages=packet.pages,
                    state=(policy.parameters or {}).get("fee_state", ""),
                )
            now = clock.now()
            disclosure = Disclosure.objects.create(
                patient=request.patient,
                request=request,
                disclosed_on=timezone.localdate(now),
                recipient_name=(request.requester_organization or request.requester_name)[:200],
                recipient_address=request.requester_address,
                description=_description(request, packet, built),
                purpose=(request.purpose or request.get_requester_type_display())[:300],
                requester_type=request.requester_type,
                accountable=accountable,
                basis=basis,
                document_ids=built.document_ids,
                entered_by=user,
                entered_at=now,
            )
            if not rerelease:
                request.released_at = now
                request.save(update_fields=["released_at"])
            event(
                request,
                "re_released" if rerelease else "released",
                user,
                to_status="" if rerelease else RequestStatus.RELEASED,
                packet=str(packet.public_id),
                **({"reason": rerelease_reason} if rerelease else {}),
            )
            record_event(
                user,
                Action.DISCLOSE,
                purpose=AUDIT_PURPOSE.get(basis, ""),
                patient_id=request.patient.public_id,
                object_type=REQUEST,
                object_id=str(request.public_id),
                reason=rerelease_reason,
                detail={
                    "packet": str(packet.public_id),
                    "documents": built.document_ids,
                    "pages": packet.pages,
                    "sha256": packet.sha256,
                    "basis": basis,
                    "accountable": accountable,
                    "requester_type": request.requester_type,
                    "disclosure": str(disclosure.public_id),
                    "rerelease": rerelease,
                    "delivery": request.delivery,
                },
            )
    except PacketError as error:
        raise refuse(user, request, Action.DISCLOSE, str(error)) from error
    return Released(packet, token, disclosure)


def _description(request: RoiRequest, packet: Packet, built) -> str:
    items = (
        ReleaseItem.objects.filter(request=request, included=True)
        .select_related("document__doc_type")
        .order_by("document__service_at", "pk")
    )
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item.document.doc_type.display] = kinds.get(item.document.doc_type.display, 0) + 1
    listed = ", ".join(f"{name} ({count})" for name, count in sorted(kinds.items()))
    text = f"{packet.pages} pages: {listed}"
    if built.statements:
        text += f"; with {built.statements} amendment statement(s)"
    return text[:2000]


# --- staff: the packet, a new link, paper -------------------------------------------------


def _packet_of(user, request: RoiRequest, packet_id, action) -> Packet:
    packet = (
        request.packets.filter(public_id=_uuid(packet_id)).first() if _uuid(packet_id) else None
    )
    if packet is None:
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            patient_id=request.patient.public_id,
            object_type=PACKET,
            object_id=str(packet_id)[:64],
            reason="no such packet on the request",
        )
        raise Http404("No such packet")
    return packet


def _uuid(value):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _verified_file(packet: Packet):
    if integrity.file_sha256(packet.file.name) != packet.sha256:
        raise PacketError("The stored packet does not match the checksum of what was sent.")
    return packet.file.open("rb")


def open_packet(user, request_id, packet_id):
    """(packet, open file) for staff (``roi.process`` or ``roi.quality_check``), after
    checking the stored file against its checksum; audited as an export."""
    from accounts.access import has_permission

    permission = RP.QUALITY_CHECK if has_permission(user, RP.QUALITY_CHECK) else RP.PROCESS
    request = find_request(user, request_id, permission=permission, action=Action.EXPORT)
    packet = _packet_of(user, request, packet_id, Action.EXPORT)
    try:
        handle = _verified_file(packet)
    except PacketError as error:
        raise refuse(user, request, Action.EXPORT, str(error)) from error
    record_event(
        user,
        Action.EXPORT,
        patient_id=request.patient.public_id,
        object_type=PACKET,
        object_id=str(packet.public_id),
        detail={"request": str(request.public_id), "sha256": packet.sha256, "by": "staff"},
    )
    return packet, handle


def do_new_download_link(user, request_id, packet_id) -> tuple[Packet, str]:
    """A new download link for an electronic packet (the old one stops working)."""
    request = find_request(user, request_id, action=Action.UPDATE)
    packet = _packet_of(user, request, packet_id, Action.UPDATE)
    if not electronic(request):
        raise refuse(user, request, Action.UPDATE, "This request is delivered on paper.")
    with transaction.atomic():
        packet = Packet.objects.select_for_update().get(pk=packet.pk)
        token, packet.download_token_hash, packet.download_expires_at = _new_token(
            policy_for(request)
        )
        packet.save(update_fields=["download_token_hash", "download_expires_at"])
        audit(user, request, Action.UPDATE, step="new_download_link", packet=str(packet.public_id))
    return packet, token


def do_mark_paper(user, request_id, packet_id, *, step: str) -> Packet:
    """Mark a paper packet ``printed``, then ``mailed``."""
    if step not in ("printed", "mailed"):
        raise ValidationError("Mark the packet printed or mailed.")
    action = Action.PRINT if step == "printed" else Action.UPDATE
    request = find_request(user, request_id, action=action)
    packet = _packet_of(user, request, packet_id, action)
    if electronic(request):
        raise refuse(user, request, action, "This packet is delivered electronically.")
    if step == "printed" and packet.printed_at:
        raise refuse(user, request, action, "The packet is already marked printed.")
    if step == "mailed" and not packet.printed_at:
        raise refuse(user, request, action, "Mark the packet printed before it is mailed.")
    if step == "mailed" and packet.mailed_at:
        raise refuse(user, request, action, "The packet is already marked mailed.")
    with transaction.atomic():
        packet = Packet.objects.select_for_update().get(pk=packet.pk)
        setattr(packet, f"{step}_at", clock.now())
        packet.save(update_fields=[f"{step}_at"])
        event(request, f"packet_{step}", user, packet=str(packet.public_id))
        record_event(
            user,
            action,
            patient_id=request.patient.public_id,
            object_type=PACKET,
            object_id=str(packet.public_id),
            detail={"request": str(request.public_id), "step": step},
        )
    return packet


# --- the requester's download ----------------------------------------------------------------


class DownloadRefused(Exception):
    """The link or the verification failed (already audited); the message may be shown."""


def _link(token: str) -> Packet | None:
    if not token or len(token) > 100:
        return None
    return (
        Packet.objects.select_related("request", "request__patient")
        .filter(download_token_hash=_hash(token))
        .first()
    )


def _refuse_download(packet: Packet | None, reason: str, message: str) -> DownloadRefused:
    link = packet.download_token_hash[:16] if packet else ""
    record_event(
        None,
        Action.EXPORT,
        outcome=Outcome.DENIED,
        patient_id=packet.request.patient.public_id if packet else None,
        object_type=PACKET,
        object_id=str(packet.public_id) if packet else "",
        reason=reason,
        detail={"link": link} if link else {},
    )
    return DownloadRefused(message)


INVALID_LINK = (
    "This download link is not valid or has expired. Ask the records department for a new one."
)


def _failures(packet: Packet) -> int:
    return AuditEvent.objects.filter(
        object_type=PACKET,
        object_id=str(packet.public_id),
        outcome=Outcome.DENIED,
        reason="verification failed",
        detail__link=packet.download_token_hash[:16],
    ).count()


# Unknown links are refused without a log-in: each refusal is audited, but at most this
# many per ten minutes, so anonymous requests cannot flood the hash-chained trail (which
# serialises writers). The first ones of a burst are enough to see the probing.
UNKNOWN_LINK_AUDITS_PER_10_MIN = 50


def _audit_unknown_link() -> bool:
    from django.core.cache import cache

    key = f"roi:unknown-link:{int(clock.now().timestamp()) // 600}"
    cache.add(key, 0, timeout=700)
    try:
        return cache.incr(key) <= UNKNOWN_LINK_AUDITS_PER_10_MIN
    except ValueError:
        return True


def check_link(token: str) -> Packet:
    """The packet behind a live link (refusal audited)."""
    packet = _link(token)
    if packet is None:
        if _audit_unknown_link():
            raise _refuse_download(None, "unknown download link", INVALID_LINK)
        raise DownloadRefused(INVALID_LINK)
    if packet.download_expires_at is None or packet.download_expires_at <= clock.now():
        raise _refuse_download(packet, "download link expired", INVALID_LINK)
    if _failures(packet) >= MAX_FAILED_VERIFICATIONS:
        raise _refuse_download(packet, "download link locked", INVALID_LINK)
    return packet


def download(token: str, *, request_number: str, birth_date: dt.date | None):
    """(packet, open file) once the requester proved they hold the request number and
    the patient's date of birth; the download is audited as a disclosure delivery and
    the first one recorded on the packet."""
    packet = check_link(token)
    request = packet.request
    if (
        request_number or ""
    ).strip().upper() != request.number.upper() or birth_date != request.patient.birth_date:
        raise _refuse_download(
            packet, "verification failed", "The request number or the date of birth does not match."
        )
    try:
        handle = _verified_file(packet)
    except PacketError as error:
        raise _refuse_download(packet, "stored packet damaged", str(error)) from error
    with transaction.atomic():
        Packet.objects.filter(pk=packet.pk, downloaded_at__isnull=True).update(
            downloaded_at=clock.now()
        )
        record_event(
            None,
            Action.EXPORT,
            purpose=Purpose.PATIENT_REQUEST
            if request.requester_type in (RequesterType.PATIENT, RequesterType.REPRESENTATIVE)
            else "",
            patient_id=request.patient.public_id,
            object_type=PACKET,
            object_id=str(packet.public_id),
            username=f"requester of {request.number}",
            detail={"request": str(request.public_id), "sha256": packet.sha256, "by": "requester"},
        )
    return packet, handle
