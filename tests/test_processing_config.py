"""``daq check`` validates the processing chains like every other section: every problem
at once, with its dotted path, and a hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daq.config import loads
from daq.errors import ConfigError

from .conftest import REPO


def _site(processing: dict) -> str:
    doc = yaml.safe_load((REPO / "configs" / "site-example.yaml").read_text())
    doc["processing"] = processing
    return yaml.safe_dump(doc)


def test_the_site_example_chains_are_valid():
    cfg = loads((REPO / "configs" / "site-example.yaml").read_text())
    assert cfg.processing is not None
    assert cfg.processing["chains"]["L1.level"]["summaries"] == [600.0]
    assert cfg.processing["chains"]["RAIN.rainfall"]["totals"] == [3600.0, 86400.0]
    assert cfg.processing["day_start"] == 8.0


def test_every_chain_problem_is_reported_at_once():
    bad = {"timezone": "Mars/Olympus", "day_start": 25, "chains": {
        "L1.levle": {"summaries": ["10min"]},
        "L2.level": {"despike": {"window": 6}, "summaries": ["7min", "soon"]},
        "W1.flow": {"raw": "drop"},
        "W2.flow": {"totals": ["1h"], "raww": "keep"},
        "W3.flow": {},
    }}
    with pytest.raises(ConfigError) as err:
        loads(_site(bad))
    got = {p.path: p for p in err.value.problems}
    assert "processing.day_start" in got
    assert got["processing.chains.L1.levle"].hint == "did you mean 'L1.level'?"
    assert "is even" in got["processing.chains.L2.level.despike.window"].message
    assert "does not divide a day" in got["processing.chains.L2.level.summaries[0]"].message
    assert "processing.chains.L2.level.summaries[1]" in got
    assert "would lose the data" in got["processing.chains.W1.flow.raw"].message
    assert "processing.chains.W2.flow.raww" in got
    assert "empty chain" in got["processing.chains.W3.flow"].message
    assert "processing.timezone" in got


def test_daq_check_exits_2_on_a_bad_chain(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(_site({"chains": {"L1.level": {"summaries": ["7min"]}}}))
    out = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(path)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "processing.chains.L1.level.summaries[0]" in out.stderr \
        + out.stdout


def test_daq_run_quarantines_a_broken_chain_and_keeps_the_others():
    cfg = loads(_site({"chains": {"L1.level": {"summaries": ["10min"]},
                                  "GONE.level": {"summaries": ["10min"]}}}), quarantine=True)
    assert cfg.processing is not None and list(cfg.processing["chains"]) == ["L1.level"]
    assert [p.path for p in cfg.quarantined] == ["processing.chains.GONE.level"]


BAD_CHAINS = """\
processing:
  timezone: Mars/Olympus
  chains:
    L1.levle:
      summaries: [10min]
    L2.level:
      despike:
        window: 6
      summaries:
        - 7min
        - soon
    W1.flow:
      raw: drop
    W2.flow:
      totals: [1h]
      raww: keep
    W3.flow: {}
"""


def test_every_chain_problem_carries_its_yaml_line(tmp_path: Path):
    """As every other section's problems do, each chain problem names the line of the key
    (or list item) it is about, in ``daq check``'s output too."""
    site = (REPO / "configs" / "site-example.yaml").read_text()
    text = site[:site.index("\nprocessing:") + 1] + BAD_CHAINS
    lines = text.splitlines()

    def line_of(fragment: str, after: int = 0) -> int:
        return next(i + 1 for i in range(after, len(lines)) if fragment in lines[i])

    start = line_of("processing:")
    expect = {
        "processing.timezone": line_of("timezone: Mars", start),
        "processing.chains.L1.levle": line_of("L1.levle:", start),
        "processing.chains.L2.level.despike.window": line_of("window: 6", start),
        "processing.chains.L2.level.summaries[0]": line_of("- 7min", start),
        "processing.chains.L2.level.summaries[1]": line_of("- soon", start),
        "processing.chains.W1.flow": line_of("W1.flow:", start),
        "processing.chains.W1.flow.raw": line_of("raw: drop", start),
        "processing.chains.W2.flow.raww": line_of("raww: keep", start),
        "processing.chains.W3.flow": line_of("W3.flow:", start),
    }
    with pytest.raises(ConfigError) as err:
        loads(text)
    got = {}
    for p in err.value.problems:
        assert p.path.startswith("processing."), p
        got.setdefault(p.path, set()).add(p.line)
    assert got == {path: {line} for path, line in expect.items()}
    path = tmp_path / "c.yaml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(path)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    for where, line in expect.items():
        assert f"{where} (line {line})" in out.stdout + out.stderr, where


def test_a_chain_may_name_a_device_channel():
    doc = yaml.safe_load((REPO / "configs" / "site-example.yaml").read_text())
    dev = next(iter(next(iter(doc["buses"].values()))["devices"]))
    from daq.config import instantiate

    cfg = loads(yaml.safe_dump(doc))
    ch = next(f"{d.name}/{c.name}" for d in cfg.devices if d.name == dev
              for c in instantiate(d, cfg.drivers).channels)
    doc["processing"] = {"chains": {ch: {"summaries": ["10min"]},
                                    "no/such/channel": {"summaries": ["10min"]}}}
    with pytest.raises(ConfigError) as err:
        loads(yaml.safe_dump(doc))
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("processing.chains.no/such/channel", "a chain is named after its channel: a sensor "
         "output like L1.level or a device channel like dev/ch1")]
    del doc["processing"]["chains"]["no/such/channel"]
    assert list(loads(yaml.safe_dump(doc)).processing["chains"]) == [ch]
