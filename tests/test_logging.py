"""Patient data stays out of the logs."""

import logging

from recordroom.logging_filters import StripQueryStrings


def test_query_strings_are_dropped_from_request_lines():
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /patients/?q=Quillfeather%2C+Marigold+1968-04-12 HTTP/1.1", "200", "512"),
        None,
    )
    StripQueryStrings().filter(record)
    line = record.getMessage()
    assert "Quillfeather" not in line and "1968" not in line
    assert line.startswith('"GET /patients/?… HTTP/1.1" 200')


def test_a_request_attached_to_a_record_is_dropped_when_it_has_a_query():
    class FakeRequest:
        GET = {"q": "123-45-6789"}

    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Forbidden: %s", ("/x",), None
    )
    record.request = FakeRequest()
    StripQueryStrings().filter(record)
    assert record.request is None
