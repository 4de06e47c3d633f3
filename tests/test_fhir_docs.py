"""docs/fhir.md lists the search parameters /fhir/metadata advertises, and no others
(issue 5, point 8). The curl examples themselves run against a server with
scripts/check-fhir-docs.sh."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from interop import api_access
from interop.search import CONTROL_PARAMS, RESULT_PARAMS

DOC = Path(__file__).resolve().parent.parent / "docs" / "fhir.md"
PARAM_NAME = re.compile(r"^_?[a-z][A-Za-z-]*$")
OTHER_TYPES = "other stored types"


def _table_rows(heading: str) -> list[list[str]]:
    """The rows of the table whose header row is ``heading``, as lists of cells."""
    text = DOC.read_text()
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("| ---"):
            continue
        if not line.startswith("|"):
            break
        # A | inside a cell is written \| (GitHub's tables).
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows


def _names(cell: str) -> set[str]:
    """The parameter names of a table cell: its backticked words outside parentheses
    (the parentheses hold example values)."""
    cell = re.sub(r"\([^)]*\)", "", cell)
    return {name for name in re.findall(r"`([^`]+)`", cell) if PARAM_NAME.match(name)}


def documented_params() -> dict[str, set[str]]:
    """Type (or ``other stored types``) -> the parameters the doc's search table lists."""
    rows = _table_rows("| type | parameters |")
    table = {}
    for first, params in rows:
        for resource_type in first.split(", "):
            table[resource_type] = _names(params)
    return table


def advertised(client) -> dict[str, set[str]]:
    statement = client.get("/fhir/metadata").json()
    return {
        r["type"]: {p["name"] for p in r.get("searchParam", [])}
        for r in statement["rest"][0]["resource"]
    } | {"*": {p["name"] for p in statement["rest"][0]["searchParam"]}}


@pytest.mark.django_db
def test_the_doc_lists_every_search_parameter_of_every_type(client):
    documented = documented_params()
    served = advertised(client)
    for resource_type in api_access.SERVED_TYPES:
        row = documented.get(resource_type, documented[OTHER_TYPES])
        assert row == served[resource_type], resource_type


@pytest.mark.django_db
def test_the_doc_lists_every_result_parameter(client):
    rows = _table_rows("| parameter | meaning |")
    documented = {name for row in rows for name in _names(row[0])}
    # _id is a parameter of every type (listed per type by the CapabilityStatement).
    assert documented - {"_id"} == advertised(client)["*"] == set(RESULT_PARAMS)
    assert set(RESULT_PARAMS) | {"_format"} == CONTROL_PARAMS


def test_the_doc_names_no_type_that_is_not_served():
    named = set(documented_params()) - {OTHER_TYPES}
    assert named <= set(api_access.SERVED_TYPES)
