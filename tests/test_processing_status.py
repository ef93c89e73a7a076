"""`daq status` while the processing kernels load, and after they failed to load.

The daemon is built in this process from a configuration with a chain; it is not started,
so its loader has not run: that is the state `daq status` shows during the first second
of a start. The failure is a real one: the loader module cannot be imported (what a
broken NumPy or Numba install gives).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from daq.config import loads
from daq.daemon import Daemon
from daq.status import read_status
from daq.status_view import show_status

CONFIG = """
site: s
rtu: r
outbox: {commit_interval: 200ms}
buses:
  line1:
    protocol: modbus_tcp
    url: 127.0.0.1:1
    timeout: 200ms
    devices:
      unit1: {driver: modbus, address: 1, interval: 1s, options: {registers: [
              {name: level, address: 0, type: float32, unit: m}]}}
processing:
  chains:
    unit1/level: {summaries: [10min]}
"""


def written(d: Daemon) -> dict[str, Any]:
    """The status file as `daq status` reads it."""
    d.write_status(force=True)
    st, err = read_status(d.state_dir)
    assert err is None and st is not None
    return st


def test_status_says_loading_since_when_then_the_error_of_a_failed_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = Daemon(loads(CONFIG, source="c.yaml"), state_dir=str(tmp_path / "state"))
    try:
        st = written(d)
        assert st["processing"]["state"] == "loading"
        since = st["processing"]["since"]
        assert since.endswith("Z") and since[:4] == st["started"][:4]
        text = show_status(st)
        assert f"processing: loading the kernels since {since}" in text

        monkeypatch.setitem(sys.modules, "daq.processing.loader", None)
        d._load_processing()  # what the loader thread runs
        st = written(d)
        p = st["processing"]
        assert p["state"] == "failed" and p["since"] >= since
        assert p["error"].startswith("ModuleNotFoundError: ")
        assert "daq.processing.loader" in p["error"]
        assert d.pipeline.processing_failed  # chained readings now pass unprocessed
        text = show_status(st)
        assert f"processing: FAILED to load since {p['since']}: {p['error']}" in text
        assert "published unprocessed" in text
    finally:
        d.outbox.close()


def test_status_without_chains_has_no_processing(tmp_path: Path) -> None:
    cfg = CONFIG.split("processing:")[0]
    d = Daemon(loads(cfg, source="c.yaml"), state_dir=str(tmp_path / "state"))
    try:
        st = written(d)
        assert st["processing"] is None
        assert "processing" not in show_status(st)
    finally:
        d.outbox.close()
