from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import access, actions, auth
from accounts.forms import (
    ConfirmPasswordForm,
    LoginForm,
    PasswordChangeForm,
    TokenForm,
    UserCreateForm,
    UserEditForm,
)
from accounts.permissions import AccountsPermission
from accounts.roles import role_codes
from accounts.sudo import grant_sudo, sudo_required
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return "/"


@login_not_required
def login_view(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = LoginForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        step = auth.begin_login(
            request, form.cleaned_data["username"], form.cleaned_data["password"]
        )
        if step.done:
            return redirect(_next_url(request))
        if step.needs_mfa:
            return redirect(f"/accounts/mfa/?next={_next_url(request)}")
        form.add_error(None, step.error)
    status = 400 if form.errors else 200
    return render(
        request, "accounts/login.html", {"form": form, "next": _next_url(request)}, status=status
    )


@login_not_required
def mfa_view(request):
    user = auth.pending_user(request)
    if user is None:
        messages.info(request, "Sign in again: the log-in step expired.")
        return redirect("accounts:login")
    device = auth.confirmed_device(user)
    enrolling = device is None
    if enrolling:
        device = actions.pending_totp_device(user)
    form = TokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        error = auth.verify_second_factor(request, user, device, form.cleaned_data["token"])
        if not error:
            return redirect(_next_url(request))
        form.add_error("token", error)
    context = {"form": form, "enrolling": enrolling, "next": _next_url(request)}
    if enrolling:
        context.update(_enrolment_context(device))
    return render(request, "accounts/mfa.html", context, status=400 if form.errors else 200)


def _enrolment_context(device) -> dict:
    import base64

    import segno

    return {
        "qr_data_uri": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        "secret": base64.b32encode(device.bin_key).decode("ascii"),
    }


def confirm_password_view(request):
    """Ask for the password again before a sensitive action."""
    form = ConfirmPasswordForm(request.user, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            grant_sudo(request)
            record_event(
                request.user,
                Action.SECURITY,
                purpose=Purpose.SECURITY,
                reason="password confirmed for a sensitive action",
            )
            return redirect(_next_url(request))
        record_event(
            request.user,
            Action.SECURITY,
            outcome=Outcome.DENIED,
            purpose=Purpose.SECURITY,
            reason="wrong password at confirmation",
        )
    return render(
        request,
        "accounts/confirm_password.html",
        {"form": form, "next": _next_url(request)},
        status=400 if form.errors else 200,
    )


@require_POST
def logout_view(request):
    actions.do_record_logout(request.user)
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


def security_view(request):
    """The user's own account: change password, set up an authenticator."""
    form = PasswordChangeForm(request.user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_password(
                request.user, form.cleaned_data["new_password"], acting_user=request.user
            )
        except ValidationError as error:
            form.add_error("new_password", error)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Your password is changed.")
            return redirect("accounts:security")
    context = {"form": form, "has_device": auth.has_confirmed_device(request.user)}
    return render(request, "accounts/security.html", context, status=400 if form.errors else 200)


@require_POST
def enrol_mfa_view(request):
    """Opt in to a second factor: the user signs in again through the enrolment step."""
    record_event(request.user, Action.MFA, purpose=Purpose.SECURITY, reason="enrolment started")
    user = request.user
    logout(request)
    from recordroom import clock

    request.session[auth.PENDING_KEY] = {"user": user.pk, "at": clock.now().timestamp()}
    return redirect("accounts:mfa")


def user_list_view(request):
    users = access.list_users(request.user)
    return render(request, "accounts/user_list.html", {"users": users})


@sudo_required(AccountsPermission.MANAGE_USERS)
def user_create_view(request):
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = actions.do_create_user(
                username=data["username"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                roles=data["roles"],
                password=data["password"],
                acting_user=request.user,
            )
        except ValidationError as error:
            form.add_error("password" if hasattr(error, "error_list") else None, error)
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("accounts:user", public_id=user.public_id)
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "creating": True},
        status=400 if form.errors else 200,
    )


@sudo_required(AccountsPermission.MANAGE_USERS)
def user_detail_view(request, public_id):
    user = access.access_user(request.user, public_id, write=True)
    initial = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "roles": sorted(role_codes(user)),
        "is_active": user.is_active,
    }
    form = UserEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_update_user(user, acting_user=request.user, **data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"User {user.username} saved.")
            return redirect("accounts:user", public_id=user.public_id)
    context = {
        "form": form,
        "subject": user,
        "locked": actions.is_locked(user),
        "has_device": auth.has_confirmed_device(user),
    }
    return render(request, "accounts/user_form.html", context, status=400 if form.errors else 200)


@require_POST
@sudo_required(AccountsPermission.MANAGE_USERS)
def user_unlock_view(request, public_id):
    user = access.access_user(request.user, public_id, write=True)
    actions.do_unlock_user(user, acting_user=request.user)
    messages.success(request, f"User {user.username} unlocked.")
    return redirect("accounts:user", public_id=user.public_id)


@require_POST
@sudo_required(AccountsPermission.MANAGE_USERS)
def user_reset_mfa_view(request, public_id):
    user = access.access_user(request.user, public_id, write=True)
    actions.do_reset_mfa(user, acting_user=request.user)
    messages.success(
        request,
        f"The authenticator of {user.username} is reset; they enrol again at their next log-in.",
    )
    return redirect("accounts:user", public_id=user.public_id)


@login_not_required
def csrf_failure(request, reason=""):
    record_event(
        request.user if request.user.is_authenticated else None,
        Action.SECURITY,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        reason="cross-site request forgery check failed",
    )
    return render(
        request,
        "recordroom/error.html",
        {
            "title": "Form expired or forged",
            "message": "This form could not be accepted: it expired or did not come from RecordRoom. Go back, reload the page and try again.",
        },
        status=403,
    )
