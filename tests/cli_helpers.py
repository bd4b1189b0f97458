"""Shared by the fault tests: run ``t2s`` in-process and check that it failed the clear way."""

from __future__ import annotations

from t2s_lib.cli import main as cli


def cli_error(capsys, argv: list[str], *matches: str) -> str:
    """Run ``t2s argv``: exit status 2, ``error: ... / fix: ...`` on stderr (after any progress
    bars), no traceback, every string of ``matches`` in it. Returns the error text."""
    assert cli(argv) == 2, argv
    err = capsys.readouterr().err
    start = err.find("error: ")
    err = err[max(err.rfind("\r", 0, start), err.rfind("\n", 0, start)) + 1:] if start >= 0 else err
    assert err.startswith("error: ") and "fix:" in err and "Traceback" not in err, err
    for match in matches:
        assert match in err, err
    return err
