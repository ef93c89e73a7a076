"""``--help`` text from a command module's docstring: description, then examples as epilog,
without reStructuredText markup (a technician's terminal shows it raw)."""

from __future__ import annotations

import argparse
from typing import Any


def plain(text: str) -> str:
    return text.replace("``", "").replace("::", ":")


def help_kwargs(doc: str | None) -> dict[str, Any]:
    """add_parser(...) keyword arguments: description (the text before ``Examples::``) and
    epilog (the examples and whatever follows), kept as written."""
    text = doc or ""
    head, _, examples = text.partition("Examples::")
    return {"description": plain(head.strip()),
            "epilog": ("examples:" + plain(examples.rstrip())) if examples else None,
            "formatter_class": argparse.RawDescriptionHelpFormatter}
