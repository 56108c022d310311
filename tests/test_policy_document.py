"""The policy document itself: empty, not a mapping, several documents, YAML syntax, and ``version``
(cases in ``data/policy/document.yaml``)."""

from __future__ import annotations

import pytest

from policycases import assert_invalid, invalid


@pytest.mark.parametrize("text, line, key, fragments", invalid("document.yaml"))
def test_invalid_documents(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    assert_invalid(text, line, key, fragments)
