"""One exception type for every user-facing failure: it names the problem and the fix."""

from __future__ import annotations


class T2SError(Exception):
    """A clear, actionable error.

    ``problem`` says what is wrong (naming the file, item or option), ``fix`` says what to do.
    The CLI prints both and exits with status 2 instead of a traceback.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}\n  fix: {fix}")
