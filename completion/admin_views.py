"""The administrators' screens of chart completion: rules and their versions, the
completion policy per facility, and everyone's inbox of reminders. Thin views: reads
through ``completion.admin_access`` / ``completion.inbox``, changes through
``completion.rule_actions`` / ``completion.inbox``."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from completion import admin_access, inbox, rule_actions
from completion.admin_forms import PolicyForm, RetireRuleForm, RuleAddForm, RuleForm, RuleKindForm
from completion.models import RuleKind

INBOX_PAGE = 25


def _form_errors(form, error: ValidationError, *, parameters: bool = False) -> None:
    """Put an action's refusal on the form's fields (or on the form as a whole)."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for key, messages_ in error.message_dict.items():
        for message in messages_:
            if parameters and key == "parameters":
                form.error_for_parameter(message)
            elif key in form.fields:
                form.add_error(key, message)
            else:
                form.add_error(None, message)


@require_GET
def rules_view(request):
    lines = admin_access.rule_overview(request.user)
    return render(request, "completion/rules_list.html", {"lines": lines})


@require_GET
def rule_view(request, public_id):
    detail = admin_access.access_rule(request.user, public_id)
    context = {"detail": detail, "rule": detail.rule, "retire_form": RetireRuleForm()}
    return render(request, "completion/rules_detail.html", context)


@require_http_methods(["GET", "POST"])
def rule_edit_view(request, public_id):
    detail = admin_access.access_rule(request.user, public_id)
    rule = detail.rule
    if not detail.editable:
        messages.error(request, "A later version replaced this one: change the current version.")
        return redirect("completion:rule", public_id=rule.public_id)
    facilities, types = admin_access.form_choices(request.user)
    if rule.facility_id:
        facilities = [rule.facility]
    form = RuleForm(
        request.POST if request.method == "POST" else None,
        kind=rule.kind,
        facilities=facilities,
        document_types=types,
        allow_all=rule.facility_id is None,
        initial=admin_access.rule_initial(rule),
    )
    if request.method == "POST" and form.is_valid():
        try:
            new = _save_rule_version(request, rule, form)
        except ValidationError as error:
            _form_errors(form, error, parameters=True)
        else:
            messages.success(request, f"Rule {new.code}: new version from {new.effective_from}.")
            return redirect("completion:rule", public_id=new.public_id)
    context = {"form": form, "rule": rule, "detail": detail, "adding": False}
    return render(
        request, "completion/rules_form.html", context, status=400 if form.errors else 200
    )


def _save_rule_version(request, rule, form):
    data = form.cleaned_data
    values = {
        "name": data["name"],
        "description": data["description"],
        "citation": data["citation"],
        "encounter_classes": data["encounter_classes"],
        "parameters": form.parameters(),
    }
    if "document_type" in data:
        values["document_type"] = data["document_type"]
    facility = admin_access.facility_by_key(request.user, data["facility"])
    if rule.facility_id is None and facility is not None:
        # A facility's own version of a rule for all facilities overrides it there.
        return rule_actions.do_add_rule(
            code=rule.code,
            kind=rule.kind,
            facility=facility,
            effective_from=data["effective_from"],
            reason=data["reason"],
            acting_user=request.user,
            **values,
        )
    return rule_actions.do_change_rule(
        rule,
        changes=values,
        effective_from=data["effective_from"],
        reason=data["reason"],
        acting_user=request.user,
    )


@require_http_methods(["GET", "POST"])
def rule_add_view(request):
    facilities, types = admin_access.form_choices(request.user)
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    if kind not in RuleKind.values:
        chooser = RuleKindForm(request.GET if "kind" in request.GET else None)
        status = 400 if chooser.errors else 200
        return render(request, "completion/rules_kind.html", {"form": chooser}, status=status)
    form = RuleAddForm(
        request.POST if request.method == "POST" else None,
        kind=kind,
        facilities=facilities,
        document_types=types,
        initial={"code": request.GET.get("code", "")[:60]},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            rule = rule_actions.do_add_rule(
                code=data["code"],
                kind=kind,
                name=data["name"],
                description=data["description"],
                citation=data["citation"],
                encounter_classes=data["encounter_classes"],
                facility=admin_access.facility_by_key(request.user, data["facility"]),
                document_type=data.get("document_type") or None,
                parameters=form.parameters(),
                effective_from=data["effective_from"],
                reason=data["reason"],
                acting_user=request.user,
            )
        except ValidationError as error:
            _form_errors(form, error, parameters=True)
        else:
            messages.success(request, f"Rule {rule.code} added from {rule.effective_from}.")
            return redirect("completion:rule", public_id=rule.public_id)
    context = {"form": form, "kind": kind, "kind_label": RuleKind(kind).label, "adding": True}
    return render(
        request, "completion/rules_form.html", context, status=400 if form.errors else 200
    )


@require_POST
def rule_retire_view(request, public_id):
    detail = admin_access.access_rule(request.user, public_id)
    form = RetireRuleForm(request.POST)
    if form.is_valid():
        try:
            retired = rule_actions.do_retire_rule(
                detail.rule,
                last_day=form.cleaned_data["last_day"],
                reason=form.cleaned_data["reason"],
                acting_user=request.user,
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(
                request,
                f"Rule {retired.code} retired: it no longer applies from {retired.effective_from}.",
            )
            return redirect("completion:rule", public_id=retired.public_id)
    context = {"detail": detail, "rule": detail.rule, "retire_form": form}
    return render(request, "completion/rules_detail.html", context, status=400)


def _policy_initial(scope) -> dict:
    policy = scope.in_force
    return {
        "completion_days": policy.completion_days,
        "verbal_order_hours": policy.verbal_order_hours,
        "delinquency_alert_percent": policy.delinquency_alert_percent,
        "suspension_days": policy.suspension_days,
        "reminder_days": ", ".join(str(d) for d in policy.reminder_days or []),
    }


@require_http_methods(["GET", "POST"])
def policy_view(request):
    """Every scope's policy; the form edits the scope chosen (``facility``: ``all`` or a
    facility's public id) with a new version from its effective date."""
    key = (request.POST.get("facility") or request.GET.get("facility") or "all")[:64]
    facility = admin_access.policy_scope(request.user, key)
    scopes = admin_access.policy_overview(request.user)
    chosen = next(s for s in scopes if s.facility == facility)
    form = PolicyForm(
        request.POST if request.method == "POST" else None, initial=_policy_initial(chosen)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            policy = rule_actions.do_change_policy(
                facility=facility,
                effective_from=data["effective_from"],
                reason=data["reason"],
                completion_days=data["completion_days"],
                verbal_order_hours=data["verbal_order_hours"],
                delinquency_alert_percent=data["delinquency_alert_percent"],
                suspension_days=data["suspension_days"],
                reminder_days=data["reminder_days"],
                acting_user=request.user,
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(
                request, f"Completion policy for {chosen.name} from {policy.effective_from} saved."
            )
            return redirect(f"{request.path}?facility={chosen.key}")
    context = {"scopes": scopes, "chosen": chosen, "form": form}
    return render(
        request, "completion/policy_list.html", context, status=400 if form.errors else 200
    )


@require_GET
def inbox_view(request):
    unread_only = request.GET.get("show") == "unread"
    page = Paginator(inbox.my_inbox(request.user, unread_only=unread_only), INBOX_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "unread_only": unread_only, "unread": inbox.unread_count(request.user)}
    return render(request, "completion/inbox_list.html", context)


@require_POST
def inbox_read_view(request):
    keys = None if request.POST.get("all") else request.POST.getlist("message")
    try:
        changed = inbox.do_mark_read(request.user, keys, acting_user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("completion:inbox")
    messages.success(request, f"{changed} message{'' if changed == 1 else 's'} marked read.")
    return redirect("completion:inbox")
