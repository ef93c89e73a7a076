"""``daq check`` under mutated configurations: every input is a Config or a ConfigError.

Mutations of the bundled demo configuration (seeded, so a failure is reproducible):
bytes flipped, lines dropped, doubled or cut, values replaced by hostile ones (deep
nesting, 400-digit numbers, lists where names belong, invalid UTF-8). The reproducers the
issue names run through the real command (exit 2, problems listed, no traceback).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from daq import config
from daq.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEMO = (REPO / "configs" / "demo.yaml").read_text()
HOSTILE = ["[" * 165 + "1" + "]" * 165, "9" * 400, "-" * 5, "[weir]", "{a: [b]}", "1e999",
           ".nan", "-.inf", "~", "''", "!!binary AAAA", "*nope", "&a [*a]", "0x7fffffff",
           "500", "-5", "true", "[]", "{}", "'\\xff'", "ü" * 3, "1:2:3", "2026-13-45"]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    op = rng.randrange(6)
    i = rng.randrange(len(lines))
    if op == 0:  # replace the value of one key by a hostile one
        key, sep, _ = lines[i].partition(":")
        if sep:
            lines[i] = f"{key}: {rng.choice(HOSTILE)}"
    elif op == 1:
        del lines[i]
    elif op == 2:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == 3:  # flip characters
        chars = list(lines[i]) or [" "]
        for _ in range(rng.randrange(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice("{}[]:,-&*!|>'\"#% \t")
        lines[i] = "".join(chars)
    elif op == 4:
        return "\n".join(lines)[:rng.randrange(len(text))]
    else:  # re-indent a line
        lines[i] = " " * rng.randrange(0, 9) + lines[i].lstrip()
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(8))
def test_mutated_configurations_give_a_config_or_problems(seed: int) -> None:
    rng = random.Random(seed)
    for n in range(100):
        text = DEMO
        for _ in range(rng.randrange(1, 4)):
            text = mutate(text, rng)
        try:
            config.loads(text, source=f"seed {seed} #{n}")
        except ConfigError as err:
            assert err.problems, f"seed {seed} #{n}: a ConfigError without problems"
            for p in err.problems:
                assert p.message and len(str(p)) < 2000


@pytest.mark.parametrize("content,words", [
    (b"\xff", "not UTF-8 text: byte 0xff at offset 0"),
    (b"site: s\nrtu: r\nbuses: {}\nmqtt: {keepalive: " + b"[" * 165 + b"1" + b"]" * 165
     + b"}\n", "nested too deeply"),
    (b"site: s\nrtu: r\nbuses: {}\noutbox: {max_days: " + b"9" * 400 + b"}\n",
     "too large for a number"),
    (b"site: s\nrtu: r\nbuses: {}\nsensors: {X: {kind: [weir]}}\n", "unknown sensor kind"),
    (b"site: s\nrtu: r\nbuses: {a: [1, 2\n", "flow sequence that started on line 3"),
    (b"site: s\nrtu: r\nmqtt: {url: 'mqtt://127.0.0.1:1893l'}\n", "the port '1893l'"),
    (b"site: s\nrtu: r\nmqtt: {url: 'mqtt://127.0.0.1:99999'}\n", "the port '99999'"),
    (b"site: s\nrtu: r\nbuses: {b: {protocol: modbus_rtu, url: 'sim://x', timeout: 500}}\n",
     "500 s is above the maximum 30 s"),
    (b"x: " + b"a" * (1 << 20) + b"\n", "larger than 1048576 bytes"),
    (b"x: [" + b"[1, {a: b}], " * 60000 + b"]\n", "far more than a configuration holds"),
], ids=["xff", "deep", "400-digits", "unhashable-kind", "yaml-syntax", "port-1893l",
        "port-99999", "bare-timeout", "over-1MB", "too-many-values"])
def test_issue_reproducers_exit_2_with_the_problem(tmp_path: Path, content: bytes,
                                                   words: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    res = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(path)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr


def test_one_misspelt_driver_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(DEMO.replace("driver: vw_logger", "driver: vw_loger", 1))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert [p.path for p in err.value.problems] == ["buses.rs485_sim.devices.vw_a.driver"]
    assert "did you mean 'vw_logger'" in str(err.value.problems[0])


def test_a_bare_duration_above_ten_minutes_must_say_its_unit(tmp_path: Path) -> None:
    bare = DEMO.replace("interval: 10s", "interval: 900", 1)
    with pytest.raises(ConfigError) as err:
        config.loads(bare)
    assert any("900 without a unit is 900 s" in p.message for p in err.value.problems)
    config.loads(DEMO.replace("interval: 10s", "interval: 900s", 1))  # with a unit: fine
