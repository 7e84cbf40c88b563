"""The one exception type for mistakes a user can make.

Everything a user can cause (a bad name, path, file, config key or input) raises
:class:`FcnlabError` with one sentence that says what is wrong and how to fix it. The CLI
prints that sentence and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class FcnlabError(ValueError):
    """A user-facing error whose message is one complete sentence."""
