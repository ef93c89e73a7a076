"""``daq ports`` finds who holds a port; ``daq completion`` completes from the parser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .clitools import Tmux

REPO = Path(__file__).resolve().parents[1]
HOLD = ("import os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
        "print('open', flush=True); time.sleep(60)")


def daq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_ports_names_the_process_holding_a_pty() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    # argv that looks like the daemon's (`python -m daq run …`) for the second holder
    holders = [subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE,
                                text=True),
               subprocess.Popen([sys.executable, "-c", HOLD, path, "-m", "daq", "run"],
                                stdout=subprocess.PIPE, text=True)]
    try:
        for h in holders:
            assert h.stdout is not None and h.stdout.readline().strip() == "open"
        res = daq("ports", path, "--json")
        table = daq("ports", path)
        os.close(slave)
        free = None
        for h in holders:
            h.kill()
            h.wait(10)
        free = daq("ports", path, "--json")
    finally:
        for h in holders:
            h.kill()
        os.close(master)
    assert res.returncode == 0, res.stderr
    port = json.loads(res.stdout)["ports"][0]
    pids = {h["pid"]: h["daemon"] for h in port["held_by"]}
    assert pids[holders[0].pid] is False and pids[holders[1].pid] is True
    assert os.getpid() in pids  # this test holds it too
    assert f"daq daemon (pid {holders[1].pid})" in table.stdout
    assert free is not None
    left = {h["pid"] for h in json.loads(free.stdout)["ports"][0]["held_by"]}
    assert not left & {h.pid for h in holders}


def test_ports_lists_and_refuses_a_missing_device() -> None:
    listing = daq("ports", "--json")
    assert listing.returncode == 0 and "ports" in json.loads(listing.stdout)
    missing = daq("ports", "/dev/ttyNOPE9")
    assert missing.returncode == 2 and "no such device: /dev/ttyNOPE9" in missing.stderr


def test_bash_completion_from_the_parser(tmp_path: Path) -> None:
    script = daq("completion", "bash")
    assert script.returncode == 0
    (tmp_path / "c.sh").write_text(script.stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        out = subprocess.run(["bash", "-c", f"source {tmp_path}/c.sh; COMP_WORDS=({line}); "
                              f"COMP_CWORD={len(words) - 1}; _daq; "
                              "printf '%s\\n' \"${COMPREPLY[@]}\""],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.split()

    assert complete("daq", "mo") == ["modbus"]
    assert complete("daq", "modbus", "") == ["--help", "read", "scan", "trace"]
    assert "--decode" in complete("daq", "modbus", "read", "--d")
    assert complete("daq", "modbus", "read", "--kind", "") == ["holding", "input", "coil",
                                                               "discrete"]
    assert "solve" in complete("daq", "gnss", "")


def _zsh(tmp_path: Path) -> Path:
    """The zsh script in a file; the test is skipped (with the reason) without zsh."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (scripts/_setup.sh installs it)")
    script = daq("completion", "zsh")
    assert script.returncode == 0, script.stderr
    path = tmp_path / "fpath" / "_daq"
    path.parent.mkdir()
    path.write_text(script.stdout)
    return path


def zsh(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["zsh", "-f", "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "HOME": str(tmp_path),
                                           "ZDOTDIR": str(tmp_path)})


def test_zsh_completion_loads_sourced_and_from_fpath(tmp_path: Path) -> None:
    script = _zsh(tmp_path)
    # sourced into a bare shell (no compinit yet): the script starts compinit itself
    sourced = zsh(tmp_path, f"source {script} && print -r -- $_comps[daq]")
    assert (sourced.returncode, sourced.stdout, sourced.stderr) == (0, "_daq\n", "")
    # installed as $fpath/_daq: compinit finds it by its #compdef line
    installed = zsh(tmp_path, f"fpath=({script.parent} $fpath); autoload -Uz compinit; "
                              "compinit -D; print -r -- $_comps[daq]")
    assert (installed.returncode, installed.stdout, installed.stderr) == (0, "_daq\n", "")


def test_zsh_completes_a_subcommand_on_a_terminal(tmp_path: Path) -> None:
    script = _zsh(tmp_path)
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (scripts/_setup.sh installs it)")
    term = Tmux(tmp_path, ["env", f"HOME={tmp_path}", f"ZDOTDIR={tmp_path}", "PS1=> ",
                           "zsh", "-f"])
    try:
        term.keys(f"source {script} && print loaded-$((40 + 2))", "Enter")
        term.wait_screen("loaded-42")
        term.keys("daq modb", "Tab")
        term.wait_screen("> daq modbus")  # capture-pane drops trailing spaces
        term.keys("sc", "Tab")
        term.wait_screen("> daq modbus scan")
        term.keys("C-u", "daq modbus read --kind co", "Tab")
        term.wait_screen("> daq modbus read --kind coil")
        term.keys("C-u", "daq gnss ser", "Tab")  # the GNSS commands are in the table too
        screen = term.wait_screen("> daq gnss series")
    finally:
        term.close()
    assert "command not found" not in screen and "compdef" not in screen


def test_modbus_tools_do_not_talk_over_the_daemon() -> None:
    """A port the daemon holds is refused (its polling would collide), unless --force."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    daemon = subprocess.Popen([sys.executable, "-c", HOLD, path, "-m", "daq", "run"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "open"
        read = daq("modbus", "read", path, "--unit", "1", "--address", "0")
        scan = daq("modbus", "scan", path, "--ids", "1-2")
        forced = daq("modbus", "read", path, "--unit", "1", "--address", "0", "--force",
                     "--timeout", "0.1")
    finally:
        daemon.kill()
        daemon.wait(10)
        os.close(slave)
        os.close(master)
    for res in (read, scan):
        assert res.returncode == 1
        assert f"the daq daemon (pid {daemon.pid}) holds {path}" in res.stderr
    assert forced.returncode == 1 and "Nothing came back" in forced.stderr
