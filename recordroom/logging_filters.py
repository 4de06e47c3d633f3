"""Log filters that keep patient data out of logs."""

import logging
import re

_QUERY = re.compile(r"\?[^\s\"]*")


class StripQueryStrings(logging.Filter):
    """Drop query strings from request lines: a search for a name, a date of birth or an
    SSN travels in the query string, and must not land in the server's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _QUERY.sub("?…", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub("?…", record.msg)
        request = getattr(record, "request", None)
        if request is not None and getattr(request, "GET", None):
            record.request = None
        return True
