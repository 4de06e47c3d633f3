"""Log filters that keep patient data out of logs."""

import logging
import re

_QUERY = re.compile(r"\?[^\s\"]*")
# Path segments that are secrets: the requester's download token of a release packet.
_SECRET_PATHS = re.compile(r"(/roi/download/)[^/\s\"?]+")


def redact_path(path: str) -> str:
    """A request path with its secret segments (download tokens) replaced by "…"."""
    return _SECRET_PATHS.sub(r"\1…", path)


class StripQueryStrings(logging.Filter):
    """Drop query strings from request lines: a search for a name, a date of birth or an
    SSN travels in the query string, and must not land in the server's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                redact_path(_QUERY.sub("?…", arg)) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_path(_QUERY.sub("?…", record.msg))
        request = getattr(record, "request", None)
        if request is not None and getattr(request, "GET", None):
            record.request = None
        return True
