"""``daq gnss sessions`` / ``daq gnss export``: listing, JSON, export, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from daq.gnss.cli import sessions as cli_sessions
from daq.gnss.rinex import read_nav, read_obs
from daq.gnss.sessions.store import SessionStore

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS / "ppk_f9p_4h"
pytestmark = pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="daq gnss")
    cli_sessions.register(parser.add_subparsers(dest="gnss_command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir with two points: P01 (rover, 2 sessions) and P02 (100 epochs, 1)."""
    root = tmp_path_factory.mktemp("state")
    rover = read_obs(F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs")
    nav = read_nav(F9P / "base_2022-02-25_00-00-00_GNSS-1.nav")
    store = SessionStore(root / "gnss")
    store.set_header("P01", rover.header)
    for eph in nav.ephemerides[:60]:
        store.add_ephemeris("P01", eph)
    for ep in rover.epochs:
        store.add_epoch("P01", ep)
    for ep in rover.epochs[:100]:
        store.add_epoch("P02", ep)
    store.close()
    return root


def test_sessions_table_lists_every_session(state: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert run("sessions", "--state-dir", str(state)) == 0
    out = capsys.readouterr().out
    assert "P01/20220225T1200Z  closed     617" in out
    assert "P01/20220225T1600Z  open       347" in out
    assert "P02/20220225T1200Z  open       100" in out


def test_sessions_json_for_one_point(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sessions", "--point", "P01", "--json", "--state-dir", str(state)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["P01/20220225T1200Z", "P01/20220225T1600Z"]
    assert rows[0]["epochs"] == 617 and rows[0]["interval_s"] == 15.0
    assert set(rows[0]["satellites"]) == {"C", "E", "G", "R"} and rows[0]["gaps"] == []


def test_export_writes_rinex_that_reads_back(state: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run("export", "P01/20220225T1600Z", "--rinex", str(tmp_path),
               "--state-dir", str(state)) == 0
    paths = capsys.readouterr().out.split()
    obs, nav = read_obs(paths[0]), read_nav(paths[1])
    assert len(obs.epochs) == 347 and not obs.problems
    sent = read_nav(F9P / "base_2022-02-25_00-00-00_GNSS-1.nav").ephemerides[:60]
    # the later session starts with the latest ephemeris of each satellite seen before
    assert len(nav.ephemerides) == len({e.sat for e in sent}) and nav.skipped == 0


def test_listing_is_read_only_and_leaves_open_sessions_alone(state: Path) -> None:
    part = next((state / "gnss" / "P02").glob("*.part"))
    before = part.read_bytes()
    with part.open("ab") as f:
        f.write(b"DWO\x10")  # a record the daemon is half-way through writing
    try:
        assert run("sessions", "--state-dir", str(state), "--json") == 0
        assert part.read_bytes() == before + b"DWO\x10"
    finally:
        with part.open("r+b") as f:
            f.truncate(len(before))


@pytest.mark.parametrize("argv, message", [
    (("export", "P01-2022", "--rinex", "X"), "bad session id"),
    (("export", "P01/20220225T0800Z", "--rinex", "X"), "no session P01/20220225T0800Z"),
    (("sessions", "--point", "../etc"), "bad point name"),
])
def test_bad_input_exits_2_with_a_clear_message(
        state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        argv: tuple[str, ...], message: str) -> None:
    argv = tuple(str(tmp_path / "out") if a == "X" else a for a in argv)
    assert run(*argv, "--state-dir", str(state)) == 2
    assert message in capsys.readouterr().err


def test_missing_state_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sessions", "--state-dir", str(tmp_path / "nope")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unwritable_output_is_a_runtime_failure(state: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert run("export", "P01/20220225T1200Z", "--rinex", str(blocker / "sub"),
               "--state-dir", str(state)) == 1
