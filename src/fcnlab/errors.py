"""The one exception type for mistakes a user can make.

Everything a user can cause (a bad name, path, file, config key or input) raises
:class:`FcnlabError` with one sentence that says what is wrong and how to fix it. The CLI
prints that sentence and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class FcnlabError(ValueError):
    """A user-facing error whose message is one complete sentence."""


def original_message(error: BaseException) -> str:
    """The sentence of ``error``, without the traceback a DataLoader worker wraps around it.

    PyTorch re-raises a worker's exception in the main process as the same type whose message
    is ``Caught X in DataLoader worker process N.\\nOriginal Traceback ...``; the last line of
    that traceback is ``module.Type: <the original sentence>``.
    """
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = next((line for line in reversed(text.splitlines()) if line.strip()), text)
    prefix, sep, sentence = last.partition(": ")
    return sentence if sep and prefix.endswith("Error") else last
