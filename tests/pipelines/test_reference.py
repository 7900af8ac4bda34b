"""The reference pages under docs/reference are what the declarations render (`make reference`)."""

from __future__ import annotations

import pytest

from pipelines import registry
from pipelines.reference import DOCS, render


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_reference_page_is_up_to_date(name):
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"{page} is missing: run `make reference`"
    assert page.read_text() == render(name), f"{page} is stale: run `make reference`"
