"""RecordRoom settings: everything that differs between installations comes from the
environment (see docs/configuration.md). Defaults are safe: DEBUG off, HTTPS-only
cookies, a strict Content-Security-Policy, and a generated secret key kept outside git.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dj_database_url

from recordroom.env import envbool, envint, envlist, envsecret, envstr, secret_from_file

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("RECORDROOM_DATA_DIR", str(BASE_DIR / "var"))).resolve()
TESTING = "pytest" in sys.modules or envbool("RECORDROOM_TESTING", False)

DEBUG = envbool("RECORDROOM_DEBUG", False)
# Whether the site is reached over HTTPS. On by default; `make run` turns it off because
# it serves plain HTTP on the loopback address only.
HTTPS = envbool("RECORDROOM_HTTPS", not DEBUG and not TESTING)

SECRET_KEY = envsecret("RECORDROOM_SECRET_KEY") or secret_from_file(DATA_DIR / "secret_key")

ALLOWED_HOSTS = envlist("RECORDROOM_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("RECORDROOM_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "recordroom",
    "accounts",
    "audit",
    "patients",
    "encounters",
    "documents",
    "clinical",
    "completion",
    "interop",
    "coding",
    "roi",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "recordroom.middleware.RequestContextMiddleware",
    "recordroom.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionGuardMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "accounts.middleware.MfaRequiredMiddleware",
    "accounts.middleware.RoleRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "patients.middleware.RestrictedRecordMiddleware",
]

ROOT_URLCONF = "recordroom.urls"
WSGI_APPLICATION = "recordroom.wsgi.application"
ASGI_APPLICATION = "recordroom.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "recordroom.context_processors.navigation",
            ],
        },
    },
]

# Databases: SQLite (WAL) by default; PostgreSQL when DATABASE_URL says so.
_database_url = envstr("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "recordroom.sqlite3"),
            "OPTIONS": {
                # IMMEDIATE: a writer takes the lock at BEGIN, so the audit chain's
                # read-previous-then-append never races another writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": envint("RECORDROOM_PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Log-in protection (HIPAA 164.312(a)(2)(iii) automatic log-off, 164.308(a)(5) log-in monitoring).
LOCKOUT_THRESHOLD = envint("RECORDROOM_LOCKOUT_THRESHOLD", 5)
LOCKOUT_MINUTES = envint("RECORDROOM_LOCKOUT_MINUTES", 15)
SESSION_IDLE_MINUTES = envint("RECORDROOM_SESSION_IDLE_MINUTES", 15)
SUDO_MINUTES = envint("RECORDROOM_SUDO_MINUTES", 10)
OTP_TOTP_ISSUER = envstr("RECORDROOM_OTP_ISSUER", "RecordRoom")

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = envint("RECORDROOM_SESSION_MAX_HOURS", 12) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and envbool("RECORDROOM_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = envint("RECORDROOM_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("RECORDROOM_TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Serve straight from the apps' static folders when collectstatic has not run (tests).
STATIC_FROM_APPS = DEBUG or TESTING or envbool("RECORDROOM_STATIC_FROM_APPS", False)
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": envstr("RECORDROOM_MEDIA_ROOT", str(DATA_DIR / "media"))},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if STATIC_FROM_APPS
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = STATIC_FROM_APPS

# Background work: django-tasks with the database backend; immediate in tests.
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks.backends.immediate.ImmediateBackend"
            if TESTING or envbool("RECORDROOM_TASKS_IMMEDIATE", False)
            else "django_tasks_db.DatabaseBackend"
        ),
    }
}

EMAIL_BACKEND = envstr("RECORDROOM_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("RECORDROOM_FROM_EMAIL", "recordroom@localhost")
# The address the department reaches RecordRoom at, for absolute links in e-mails
# (reminders); without it the links are paths.
SITE_URL = envstr("RECORDROOM_SITE_URL", "")

# Logs never carry patient data: messages name ids, and request bodies are not logged.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"strip_query": {"()": "recordroom.logging_filters.StripQueryStrings"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["strip_query"]},
        "server": {
            "class": "logging.StreamHandler",
            "filters": ["strip_query"],
            "formatter": "server",
        },
    },
    "formatters": {"server": {"format": "[{server_time}] {message}", "style": "{"}},
    "root": {"handlers": ["console"], "level": envstr("RECORDROOM_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.security.csrf": {"level": "ERROR"},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    },
}

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
TRUST_X_FORWARDED_FOR = envbool("RECORDROOM_TRUST_X_FORWARDED_FOR", False)
# Roles whose members must use TOTP multi-factor log-in; others may opt in.
MFA_REQUIRED_ROLES = envlist(
    "RECORDROOM_MFA_REQUIRED_ROLES", ["him_administrator", "privacy_officer"]
)

# Break-the-glass: how long an emergency access past a restriction lasts.
BREAK_THE_GLASS_MINUTES = envint("RECORDROOM_BREAK_THE_GLASS_MINUTES", 60)

# The legal record.
MAX_UPLOAD_MB = envint("RECORDROOM_MAX_UPLOAD_MB", 25)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = (MAX_UPLOAD_MB + 1) * 1024 * 1024
# A document entered more than this many hours after the care it records is a late entry.
LATE_ENTRY_HOURS = envint("RECORDROOM_LATE_ENTRY_HOURS", 24)
# An attending's treatment relationship lasts while the encounter is open and this many
# days after it ends (it opens restricted records and sensitive documents).
TREATMENT_RELATIONSHIP_DAYS = envint("RECORDROOM_TREATMENT_RELATIONSHIP_DAYS", 30)

# Chart completion reminders: how many days back a first run catches up on "now
# delinquent" notices, and the local hour the daily reminder task runs.
COMPLETION_REMINDER_CATCH_UP_DAYS = envint("RECORDROOM_COMPLETION_REMINDER_CATCH_UP_DAYS", 7)
COMPLETION_REMINDER_HOUR = envint("RECORDROOM_COMPLETION_REMINDER_HOUR", 7)

# FHIR API (docs/fhir.md): OAuth token and authorization code lifetimes; bulk export
# file lifetime, rows read per chunk, and how many patient ids its audit event lists.
FHIR_TOKEN_SECONDS = envint("RECORDROOM_FHIR_TOKEN_SECONDS", 3600)
FHIR_AUTHORIZATION_CODE_SECONDS = envint("RECORDROOM_FHIR_AUTHORIZATION_CODE_SECONDS", 300)
FHIR_EXPORT_HOURS = envint("RECORDROOM_FHIR_EXPORT_HOURS", 24)
FHIR_EXPORT_CHUNK = envint("RECORDROOM_FHIR_EXPORT_CHUNK", 500)
FHIR_EXPORT_AUDIT_PATIENT_IDS = envint("RECORDROOM_FHIR_EXPORT_AUDIT_PATIENT_IDS", 1000)
# 0: the defaults (100 MB for files, 20 MB for POST /fhir).
FHIR_MAX_BUNDLE_BYTES = envint("RECORDROOM_FHIR_MAX_BUNDLE_BYTES", 0)
