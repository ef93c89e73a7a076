"""The outbox: seq assigned at commit and persistent, lanes, acknowledgement, eviction."""

from __future__ import annotations

from pathlib import Path

from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox, Row


def reading(channel: str, value: float, lane: Lane = Lane.RAW) -> Reading:
    return Reading(device="d", channel=channel, quantity="q", value=value, unit="m",
                   quality=Quality.GOOD, ts=utcnow(), lane=lane)


def test_seq_is_per_channel_and_survives_reopening(tmp_path: Path) -> None:
    """seq counts per channel from 1, and continues after the file is reopened: exactly
    where the caller gives the channel's downtime skip (a polled device's, here none),
    else past the restart margin, which the first reading names in ``seq_skipped``."""
    ob = Outbox(tmp_path / "o.db")
    assert ob.restart_skip == 0  # a new outbox: no number can have been published
    assert ob.add([("t", reading("a", 1)), ("t", reading("b", 2)), ("t", reading("a", 3))]) \
        == [1, 1, 2]
    ob.ack(ob.all_rows())
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.add([("t", reading("a", 4))], skip={"a": 0}) == [3]
    got = ob.all_readings()[0]
    assert got["seq"] == 3 and got["channel"] == "a" and "seq_skipped" not in got
    margin = ob.restart_skip
    assert margin >= 100
    assert ob.add([("t", reading("b", 5)), ("t", reading("b", 6))]) == [2 + margin, 3 + margin]
    assert ob.all_readings()[1]["seq_skipped"] == [2, 1 + margin]
    assert ob.add([("t", reading("a", 7))]) == [4]  # once per channel and start


def seqs(rows: list[Row]) -> list[int]:
    return [p["seq"] for r in rows for p in r.readings()]


def test_lanes_drain_alarms_first_and_in_order(tmp_path: Path) -> None:
    """One row per lane and topic of a commit; rows leave by range, lane by lane."""
    ob = Outbox(tmp_path / "o.db")
    for i in range(5):
        ob.add([("t", reading("raw", i))])
    ob.add([("t", reading("al", 9, Lane.ALARM)), ("t", reading("raw", 5)),
            ("u", reading("raw2", 1))])
    assert ob.depth() == {"alarm": 1, "result": 0, "raw": 7}
    assert [p["channel"] for p in ob.pending(Lane.ALARM, 0, 10)[0].readings()] == ["al"]
    raw = ob.pending(Lane.RAW, 0, 3)
    assert seqs(raw) == [1, 2, 3]
    assert seqs(ob.pending(Lane.RAW, raw[-1].id, 10)) == [4, 5, 6, 1]
    assert ob.ack_through(Lane.RAW, raw[-1].id) == 3 and ob.ack(raw) == 0
    assert ob.depth()["raw"] == 4 and ob.depth()["alarm"] == 1


def test_a_poll_is_one_compact_row(tmp_path: Path) -> None:
    """Ten readings of one device go into one row, compressed: the flash cost per reading
    is a fraction of the JSON's size (bench/bench_outbox.py measures the bytes)."""
    import sqlite3

    ob = Outbox(tmp_path / "o.db")
    ob.add([("data/d", reading(f"d/ch{i}", 1000.0 + i)) for i in range(10)])
    (row,) = ob.all_rows()
    assert row.n == 10 and [p["channel"] for p in row.readings()] == [
        f"d/ch{i}" for i in range(10)]
    ob.close()
    db = sqlite3.connect(tmp_path / "o.db")
    (size,) = db.execute("SELECT length(data) FROM rows2").fetchone()
    assert size < len(row.payload) / 3


def test_cap_evicts_oldest_raw_first_never_alarms_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_rows=10)
    ob.add([("t", reading("al", i, Lane.ALARM)) for i in range(4)])
    ob.add([("t", reading("res", i, Lane.RESULT)) for i in range(3)])
    for i in range(8):
        ob.add([("t", reading("raw", i))])
    depth = ob.depth()
    assert depth == {"alarm": 4, "result": 3, "raw": 3}
    assert seqs(ob.pending(Lane.RAW, 0, 10)) == [6, 7, 8]
    assert ob.counters() == {"evicted_raw": 5}
    ob.add([("t", reading("al", 9, Lane.ALARM)) for _ in range(8)])
    assert ob.depth()["alarm"] == 12 and ob.depth()["result"] == 0
    assert ob.counters()["evicted_result"] == 3


def test_nothing_json_cannot_hold_ever_blocks_a_commit(tmp_path: Path) -> None:
    """JSON has no NaN and no bytes: such parts become null / their repr, the reading is
    committed all the same (a refused row would stop the pipeline)."""
    ob = Outbox(tmp_path / "o.db")
    odd = Reading(device="d", channel="a", quantity="q", value=float("nan"), unit="m",
                  quality=Quality.BAD, ts=utcnow(), raw={"words": [1, float("inf")],
                                                         "frame": b"\x01\x02"})
    assert ob.add([("t", odd)]) == [1]
    payload = ob.all_readings()[0]
    assert payload["value"] is None and payload["raw"]["words"] == [1, None]
    assert payload["raw"]["frame"] == repr(b"\x01\x02")


def test_concurrent_writers_never_share_a_seq(tmp_path: Path) -> None:
    """Two threads adding to one channel at once (pipeline and GNSS solver share the
    outbox) get distinct seqs 1..N: a repeated seq would make a subscriber drop a reading."""
    import sys
    import threading

    ob = Outbox(tmp_path / "o.db")
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
    try:
        def writer() -> None:
            for i in range(150):
                ob.add([("t", reading("shared", float(i)))])

        threads = [threading.Thread(target=writer) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert sorted(p["seq"] for p in ob.all_readings()) == list(range(1, 451))
    assert ob.last_seq("shared") == 450


def test_a_locked_database_reports_itself_and_leaves_the_outbox_usable(tmp_path: Path) -> None:
    """When another connection holds the write lock past SQLite's wait, add() raises the
    real error ("database is locked", not a failed ROLLBACK), assigns no seq, and works
    normally once the lock is gone."""
    import sqlite3

    import pytest

    ob = Outbox(tmp_path / "o.db")
    other = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        ob.add([("t", reading("a", 1))])
    other.execute("ROLLBACK")
    other.close()
    assert ob.add([("t", reading("a", 2))]) == [1]
    assert ob.depth()["raw"] == 1
    ob.close()


def test_seqs_and_last_polls_survive_a_kill_between_table_updates(tmp_path: Path) -> None:
    """A commit writes its rows only; the ``seqs`` table is brought up to date before a
    delete. A copy of the files taken while the outbox is open (what a kill -9 leaves)
    still knows every channel's last seq and every device's last poll, from the rows."""
    import shutil

    from daq.outbox_read import OutboxReader

    live, copy = tmp_path / "live", tmp_path / "copy"
    ob = Outbox(live / "o.db")
    for i in range(3):
        ob.add([("t", reading("a", i)), ("t", reading("b", i))], slots={"d": 1000.0 + i})
    ob.ack_through(Lane.RAW, ob.pending(Lane.RAW, 0, 1)[0].id)  # seqs table written here
    for i in range(3, 5):
        ob.add([("t", reading("a", i))], slots={"d": 1000.0 + i})
    ob.sync()
    copy.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{live}/o.db{suffix}", f"{copy}/o.db{suffix}")
    reader = OutboxReader(copy / "o.db")
    assert (reader.last_seq("a"), reader.last_seq("b")) == (5, 3)
    reader.close()
    again = Outbox(copy / "o.db")
    assert again.slots == {"d": 1004.0}
    assert again.add([("t", reading("a", 9)), ("t", reading("b", 9))],
                     skip={"a": 0, "b": 0}) == [6, 4]
    again.ack(again.all_rows())  # all delivered: the table empty, its seqs written
    again.close()
    ob.close()
    ob = Outbox(copy / "o.db")  # new rows get ids above those the seqs table covers
    ob.add([("t", reading("a", 10))], skip={"a": 0})
    ob.sync()
    shutil.rmtree(live)
    live.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{copy}/o.db{suffix}", f"{live}/o.db{suffix}")
    assert Outbox(live / "o.db").last_seq("a") == 7
    ob.close()


def test_a_restored_copy_never_reuses_a_key_of_a_channel_without_slots(tmp_path: Path) -> None:
    """GNSS results (and alarms, summaries, manual readings) have no polling slots, so no
    downtime skip: after a start each such channel jumps past the restart margin (10 seqs
    a second since the last commit the outbox holds, plus 100). The
    power-cut reproduction on the outbox: copy the files while running, publish more,
    restore the copy, start: no (channel, seq) is given to a second, different reading."""
    import shutil
    import time

    def result(point: str, value: float, lane: Lane = Lane.RESULT) -> Reading:
        return Reading(device="gnss", channel=f"{point}.displacement_x", value=value,
                       quantity="displacement_x", unit="mm", quality=Quality.GOOD,
                       ts=utcnow(), lane=lane, sensor=point)

    live, copy = tmp_path / "live", tmp_path / "copy"
    ob = Outbox(live / "o.db")
    ob.add([("gnss/M1", result("M1", 0.5)), ("alarm/M1", result("M2", 1.0, Lane.ALARM))])
    ob.sync()
    copy.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{live}/o.db{suffix}", f"{copy}/o.db{suffix}")
    published: dict[tuple[str, int], float] = {}
    for i in range(60):  # the run the copy does not know of: all of it reached the broker
        ob.add([("gnss/M1", result("M1", 10.0 + i)), ("alarm/M1", result("M2", 5.0 + i,
                                                                          Lane.ALARM))])
    ob.sync()
    for p in ob.all_readings():
        published[(p["channel"], p["seq"])] = p["value"]
    ob.close()
    time.sleep(0.05)
    restored = Outbox(copy / "o.db")  # the copy put back, the daemon started on it
    assert restored.restart_skip >= 100
    restored.add([("gnss/M1", result("M1", 99.0)), ("alarm/M1", result("M2", 98.0,
                                                                        Lane.ALARM))])
    after = [p for p in restored.all_readings() if p["value"] in (98.0, 99.0)]
    assert len(after) == 2
    for p in after:
        assert (p["channel"], p["seq"]) not in published, p
        first, last = p["seq_skipped"]
        assert first == 2 and last == p["seq"] - 1  # named: not readings lost
    restored.close()


def test_an_outbox_of_the_previous_versions_is_read_and_continued(tmp_path: Path) -> None:
    """Files written before the marks column and the preset dictionary (seqs written with
    every commit, plain zlib rows), and before that one row per reading: their rows are
    sent as they were, their seqs and last polls go on."""
    import json
    import sqlite3
    import zlib

    from daq.outbox_read import OutboxReader

    old = json.dumps({"device": "d", "channel": "a", "quantity": "q", "value": 1.0,
                      "unit": "m", "quality": "good", "ts": "2026-01-01T00:00:00.000Z",
                      "seq": 7})
    path = tmp_path / "prev.db"
    db = sqlite3.connect(path, isolation_level=None)
    for lane in range(3):
        db.execute(f"CREATE TABLE rows{lane} (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                   "n INTEGER NOT NULL, data BLOB NOT NULL)")
    db.execute("CREATE TABLE seqs (channel TEXT PRIMARY KEY, last INTEGER NOT NULL) "
               "WITHOUT ROWID")
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO rows2 VALUES (1, 't', 1, ?)", (zlib.compress(old.encode()),))
    db.execute("INSERT INTO seqs VALUES ('a', 7), ('#slot:d', 1767225600000)")
    db.close()
    assert OutboxReader(path).last_seq("a") == 7
    ob = Outbox(path)
    assert ob.all_readings() == [json.loads(old)] and ob.slots == {"d": 1767225600.0}
    assert ob.add([("t", reading("a", 2.0))], skip={"a": 0}) == [8]
    ob.close()

    oldest = tmp_path / "oldest.db"
    db = sqlite3.connect(oldest, isolation_level=None)
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, lane INTEGER, "
               "topic TEXT, channel TEXT, seq INTEGER, payload TEXT)")
    db.execute("CREATE TABLE seqs (channel TEXT PRIMARY KEY, last INTEGER NOT NULL)")
    db.execute("INSERT INTO outbox(lane, topic, channel, seq, payload) "
               "VALUES (2, 't', 'a', 7, ?)", (old,))
    db.execute("INSERT INTO seqs VALUES ('a', 7)")
    db.close()
    ob = Outbox(oldest)
    assert ob.all_readings() == [json.loads(old)]
    assert ob.add([("t", reading("a", 2.0))], skip={"a": 0}) == [8]
    ob.close()


Grouped = tuple[list[int], list[tuple[str, list[int], list[int], list[bytes]]]]


def grouped(ob: Outbox, limit: int) -> Grouped:
    ids, groups = ob.read_topics(Lane.RAW, 0, limit)
    return ids, [(t, i, n, [bytes(x) for x in xs]) for t, i, n, xs in groups]


def by_topic(rows: list[tuple[int, str, int, bytes]]) -> Grouped:
    topics = sorted({r[1] for r in rows})
    return [r[0] for r in rows], [
        (t, [r[0] for r in rows if r[1] == t], [r[2] for r in rows if r[1] == t],
         [r[3] for r in rows if r[1] == t]) for t in topics]


def test_a_batch_of_rows_reads_in_one_step_as_each_row_alone(tmp_path: Path) -> None:
    """``read_topics`` takes a batch in one step of SQLite and one call of zlib (every row
    behind a stored copy of the preset dictionary): the same rows, grouped by topic in id
    order, as decoding each alone; rows of the older formats in the batch are read one by
    one instead; a damaged row fails with an error of its own, never as wrong readings."""
    import sqlite3
    import zlib

    import pytest

    from daq.outbox import _T, ZDICT, unpack_bytes

    ob = Outbox(tmp_path / "o.db")
    for t in range(30):  # topics of every kind of name, polls of 1 to 12 readings
        ob.add([(f"data/dev {t % 4}/ü", reading(f"c{t % 4}/{i}", t + i / 7))
                for i in range(1 + t % 12)])
    ob.sync()
    table = _T[Lane.RAW]
    db = sqlite3.connect(tmp_path / "o.db")
    alone = [(i, topic, n, unpack_bytes(data)) for i, topic, n, data in db.execute(
        f"SELECT id, topic, n, data FROM {table} ORDER BY id")]
    assert ob.read(Lane.RAW, 0, 100) == alone
    assert grouped(ob, 100) == by_topic(alone)
    assert ob.read(Lane.RAW, alone[9][0], 5) == alone[10:15]
    assert ob.read(Lane.RAW, alone[-1][0], 5) == []
    # an older file's rows: zlib with the dictionary named by checksum, and plain zlib
    c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    db.execute(f"UPDATE {table} SET data=? WHERE id=?",
               (c.compress(alone[3][3]) + c.flush(), alone[3][0]))
    db.execute(f"UPDATE {table} SET data=? WHERE id=?",
               (zlib.compress(alone[4][3]), alone[4][0]))
    db.commit()
    assert ob.read(Lane.RAW, 0, 100) == alone
    assert grouped(ob, 100) == by_topic(alone)
    data = db.execute(f"SELECT data FROM {table} WHERE id=?", (alone[7][0],)).fetchone()[0]
    db.execute(f"UPDATE {table} SET data=? WHERE id=?", (data[:-9], alone[7][0]))
    db.commit()
    assert ob.read(Lane.RAW, 0, 7) == alone[:7]
    with pytest.raises(zlib.error):
        ob.read(Lane.RAW, 0, 100)
    ob.close()
