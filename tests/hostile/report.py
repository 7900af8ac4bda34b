"""The results of the corpus's cases in this session, for the closing table."""

from __future__ import annotations

RESULTS: list[dict] = []


def record(
    suite: str, pipeline: str, kind: str, key: str, problems: list[str], said: str, **measured
) -> None:
    """Note one case: clean when ``problems`` is empty; ``said`` is what it printed first;
    ``measured``: figures worth keeping (a peak resident memory)."""
    RESULTS.append(
        {
            "suite": suite,
            "pipeline": pipeline,
            "kind": kind,
            "key": key,
            "clean": not problems,
            "problems": problems,
            "said": said,
            **measured,
        }
    )


def check(
    suite: str, pipeline: str, kind: str, key: str, problems: list[str], said: str, **measured
) -> None:
    """``record`` the case, then fail the test when it was not clean."""
    record(suite, pipeline, kind, key, problems, said, **measured)
    assert not problems, f"{key}: {'; '.join(problems)}\n  printed: {said}"
