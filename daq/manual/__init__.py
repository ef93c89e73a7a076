"""Manual readings beside the automatic ones (比测, issue 11): entry, pairing, the report.

:mod:`.manual_config` (the ``manual:`` section), :mod:`.store` (readings and pairs in the
outbox's file), :mod:`.service` (the daemon's side), :mod:`.report` (the comparison),
:mod:`.cli` (``daq manual``).
"""
