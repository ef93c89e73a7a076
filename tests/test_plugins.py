"""Third-party drivers through the real entry-point mechanism, and their quarantine.

The plugins here are installed the way pip would (a ``*.dist-info`` folder with
``entry_points.txt`` on the path), not patched into the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from daq.testing import ModbusTestServer

from .conftest import REPO, wait_for

PLUGINS = {
    "brokenplug.py": "raise ImportError('libfoo.so.1: cannot open shared object file')\n",
    "crashyplug.py": textwrap.dedent("""\
        from daq.driver import ChannelSpec, Driver

        class Crashy(Driver):
            link_kind = "modbus"

            @property
            def channels(self):
                return [ChannelSpec("x", "thing", "m")]

            def poll(self, link):
                raise RuntimeError("bug in a third-party driver")

        class Picky(Driver):
            link_kind = "modbus"

            def __init__(self, name, address, options):
                raise ValueError("firmware 2.x not supported")
        """),
}
ENTRY_POINTS = textwrap.dedent("""\
    [daq.drivers]
    broken = brokenplug:Driver
    crashy = crashyplug:Crashy
    picky = crashyplug:Picky
    """)


def install_plugins(root: Path) -> dict[str, str]:
    for name, text in PLUGINS.items():
        (root / name).write_text(text)
    info = root / "daq_test_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: daq-test-plugins\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_daq_drivers_lists_a_broken_plugin_as_quarantined(tmp_path: Path) -> None:
    env = install_plugins(tmp_path)
    res = subprocess.run([sys.executable, "-m", "daq", "drivers"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    line = next(x for x in res.stdout.splitlines() if x.startswith("broken"))
    assert "quarantined" in line and "libfoo.so.1" in line
    assert any(x.startswith("modbus") and " ok " in x for x in res.stdout.splitlines())
    assert "Traceback" not in res.stderr


def test_daemon_runs_the_rest_when_drivers_fail(tmp_path: Path, run_daemon: Any) -> None:
    """A plugin that fails to import, one that refuses its configuration and one whose
    poll raises: each is isolated; the good device keeps being polled."""
    env = install_plugins(tmp_path)
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 7.5, "float32")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(textwrap.dedent(f"""\
            site: s
            rtu: r
            buses:
              gw:
                protocol: modbus_tcp
                url: {srv.url.removeprefix('tcp://')}
                timeout: 300ms
                devices:
                  good: {{driver: modbus, address: 1, interval: 500ms,
                          options: {{registers: [{{name: v, address: 0, type: float32}}]}}}}
                  gone: {{driver: broken, address: 2, interval: 1s}}
                  picky: {{driver: picky, address: 3, interval: 1s}}
                  crashy: {{driver: crashy, address: 4, interval: 500ms}}
            """))
        d = run_daemon(cfg, None, env=env)
        st = wait_for(lambda: (lambda s: s if s and _device(s, "good")["polls"] >= 4 and
                               _device(s, "crashy")["polls"] >= 4 else None)(d.status()),
                      30, "polls of the good and the crashy device")
        assert d.stop() == 0
    assert _device(st, "good")["failures"] == 0
    assert _device(st, "good")["last_values"]["v"]["value"] == 7.5
    crashy = _device(st, "crashy")
    assert crashy["driver_errors"] >= 4 and crashy["up"] is False
    assert "RuntimeError: bug in a third-party driver" in crashy["last_error"]
    names = {dev["name"] for bus in st["buses"] for dev in bus["devices"]}
    assert names == {"good", "crashy"}
    events = d.events()
    quarantined = {e["path"]: e for e in events if e["event"] == "config_quarantined"}
    assert "libfoo.so.1" in quarantined["buses.gw.devices.gone.driver"]["problem"]
    assert "firmware 2.x" in quarantined["buses.gw.devices.picky"]["problem"]
    downs = [e for e in events if e["event"] == "device_down" and e.get("device") == "crashy"]
    assert len(downs) == 1, "a failing device is logged once, not on every poll"


def _device(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for b in status["buses"] for d in b["devices"] if d["name"] == name)
