"""The durable spool on its own: order, memory bound, recovery after reopening, overflow policies."""

from __future__ import annotations

import asyncio

import pytest

from labctl.proxy.spool import Spool, SpoolFull
from labctl.proxy.stats import Stats


def open_spool(path, **kw) -> Spool:
    args = {
        "max_bytes": 10_000,
        "memory_bytes": 1_000,
        "overflow": "reject",
        "sync": "normal",
        "stats": Stats(),
    }
    return Spool(path / "spool.sqlite", **{**args, **kw})


def drain(spool: Spool, max_bytes: int = 10**9) -> list[tuple[str, bytes]]:
    out = []
    while batch := spool.peek(max_bytes):
        out.extend((e.signal, e.body) for e in batch)
        spool.remove(batch)
    return out


def test_order_kept_across_signals_and_batches_group_one_signal(tmp_path):
    spool = open_spool(tmp_path)
    plan = [("metrics", b"m1"), ("metrics", b"m2"), ("logs", b"l1"), ("metrics", b"m3")]
    for signal, body in plan:
        spool.append(signal, 1, body)
    first = spool.peek(10**6)
    assert [(e.signal, e.body) for e in first] == plan[:2]  # one signal per batch, oldest first
    spool.remove(first)
    assert drain(spool) == plan[2:]
    assert spool.gauges()["spool_rows"] == 0


def test_memory_queue_is_bounded_and_disk_takes_over(tmp_path):
    spool = open_spool(tmp_path, memory_bytes=250)
    bodies = [bytes([i]) * 100 for i in range(6)]
    for body in bodies:
        spool.append("metrics", 2, body)
    g = spool.gauges()
    assert g["queue_bytes"] <= 250 and g["spooled"]["metrics"] == 12 and g["spool_bytes"] == 600
    assert [b for _, b in drain(spool, max_bytes=150)] == bodies  # read back from disk, in order
    spool.append("logs", 1, b"again")
    assert spool.gauges()["queued"]["logs"] == 1  # back in sync once drained


def test_reopen_recovers_everything_unsent(tmp_path):
    spool = open_spool(tmp_path)
    for i in range(5):
        spool.append("logs" if i % 2 else "metrics", 3, f"b{i}".encode())
    spool.remove(spool.peek(1))  # the first one was delivered
    spool.close()
    again = open_spool(tmp_path)
    assert again.recovered_rows == 4
    assert again.gauges()["spooled"] == {"metrics": 6, "logs": 6, "traces": 0}
    assert [b for _, b in drain(again)] == [b"b1", b"b2", b"b3", b"b4"]


def test_reject_policy_raises_and_reports_full(tmp_path):
    spool = open_spool(tmp_path, max_bytes=300)
    spool.append("metrics", 1, b"x" * 200)
    spool.append("metrics", 1, b"x" * 200)  # may overshoot by one request, never more
    assert not spool.has_room() and spool.gauges()["spool_full"] is True
    with pytest.raises(SpoolFull):
        spool.append("metrics", 1, b"x")
    drain(spool)
    assert spool.has_room() and spool.gauges()["spool_full"] is False


def test_drop_oldest_keeps_the_newest_and_counts_the_dropped(tmp_path):
    stats = Stats()
    spool = open_spool(tmp_path, max_bytes=300, overflow="drop_oldest", stats=stats)
    for i in range(10):
        spool.append("metrics", 5, bytes([i]) * 100)
    kept = [b[0] for _, b in drain(spool)]
    assert kept == [7, 8, 9]
    assert stats.dropped[("metrics", "spool_overflow")] == 35


def test_drop_oldest_never_evicts_the_batch_in_flight(tmp_path):
    stats = Stats()
    spool = open_spool(tmp_path, max_bytes=300, overflow="drop_oldest", stats=stats)
    spool.append("metrics", 1, b"a" * 100)
    in_flight = spool.peek(100)
    for i in range(5):
        spool.append("metrics", 1, bytes([i]) * 100)
    spool.remove(in_flight)
    assert stats.dropped[("metrics", "spool_overflow")] == 3
    assert [b[0] for _, b in drain(spool)] == [3, 4]  # a was delivered, 0-2 dropped while it was in flight


def test_wait_wakes_on_append(tmp_path):
    spool = open_spool(tmp_path)

    async def scenario() -> bool:
        waiter = asyncio.ensure_future(spool.wait())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        spool.append("traces", 1, b"t")
        await asyncio.wait_for(waiter, 1)
        return True

    assert asyncio.run(scenario())


def test_drained_spool_gives_disk_space_back(tmp_path):
    spool = open_spool(tmp_path, max_bytes=10**8, memory_bytes=1000)
    for _ in range(200):
        spool.append("metrics", 1, b"z" * 50_000)
    spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = (tmp_path / "spool.sqlite").stat().st_size
    drain(spool)
    spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "spool.sqlite").stat().st_size < full / 10


def test_the_spool_is_readable_by_its_owner_only(tmp_path):
    # It holds payloads as received (prompt text too, when the client logs it) until the upstream has them.
    spool = open_spool(tmp_path)
    spool.append("logs", 1, b"a prompt")
    files = sorted(tmp_path.glob("spool.sqlite*"))
    assert files and {f.name for f in files} >= {"spool.sqlite", "spool.sqlite-wal"}
    assert {f.name: f.stat().st_mode & 0o777 for f in files} == {f.name: 0o600 for f in files}
