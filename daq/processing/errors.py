"""The processing package's one exception (a bad argument to a public function)."""

from __future__ import annotations

from ..errors import DaqError


class ProcessingError(DaqError, ValueError):
    """An invalid argument to a filter or a window: the message names it and its value."""
