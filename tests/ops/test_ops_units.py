"""The pieces of `labctl reload` and `backup`/`restore` that need no running lab: which proxy.yaml settings
change live, which files a service runs an older version of, and every way a backup is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.model import load_model
from labctl.ops import backup as ops_backup
from labctl.ops.config_files import digest, edited_since_applied, record_applied
from labctl.proxy import reconfigure
from labctl.proxy.config import from_dict
from labctl.state import LabState

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, **sections: object) -> object:
    raw: dict[str, object] = {"data_dir": str(tmp_path), "upstream": {"endpoint": "http://127.0.0.1:1"}}
    raw.update(sections)
    return from_dict(raw, tmp_path, env={})


def test_live_and_restart_settings_of_the_proxy(tmp_path: Path) -> None:
    old = _cfg(tmp_path)
    new = _cfg(
        tmp_path,
        auth={"bearer_token": "t"},
        limits={"retry_after": "9s", "max_request_bytes": "1MiB"},
        upstream={"endpoint": "http://127.0.0.1:2", "timeout": "3s"},
        spool={"overflow": "drop_oldest"},
        listen={"admin": "127.0.0.1:9"},
        alerts=[],
    )
    live, restart = reconfigure.changed(old, new)  # type: ignore[arg-type]
    assert sorted(live) == ["auth.bearer_token", "limits.retry_after", "upstream"]
    assert sorted(restart) == ["alerts", "limits.max_request_bytes", "listen.admin", "spool.overflow"]
    running = reconfigure.merged(old, new)  # type: ignore[arg-type]
    assert running.auth_token == "t" and running.upstream.endpoint == "http://127.0.0.1:2"
    assert running.admin == old.admin and running.spool_overflow == "reject"  # type: ignore[attr-defined]
    # Turning the upstream off (or on) creates or removes the spool: a restart.
    live, restart = reconfigure.changed(old, _cfg(tmp_path, upstream={"endpoint": ""}))  # type: ignore[arg-type]
    assert live == [] and restart == ["upstream (on or off)"]
    assert reconfigure.changed(old, _cfg(tmp_path)) == ([], [])  # type: ignore[arg-type]


def test_alertmanager_is_validated_and_reloaded_from_the_folder_docker_mounts() -> None:
    # With Docker, amtool checks the file inside the container: the path must be the one Alertmanager
    # runs, and the mount the folder (a single-file bind would keep an editor's renamed-over file away).
    import yaml

    from labctl.ops.reload import ALERTMANAGER_CONFIG_DIR, RELOADABLE

    service = yaml.safe_load((REPO / "compose" / "module-4.yml").read_text())["services"]["alertmanager"]
    assert f"../lab/alertmanager:{ALERTMANAGER_CONFIG_DIR}:ro" in service["volumes"]
    assert f"--config.file={ALERTMANAGER_CONFIG_DIR}/alertmanager.yml" in service["command"]
    assert "alertmanager" in RELOADABLE and load_model(REPO).service("alertmanager").config


def test_edited_files_are_named_until_recorded_again(tmp_path: Path) -> None:
    model = load_model(REPO)
    lab = LabState(dir=tmp_path)
    record_applied(lab, model, ["prometheus"])
    assert edited_since_applied(lab, model, "prometheus") == []
    files = digest(model, "prometheus")
    assert "lab/prometheus/prometheus.yml" in files and any(
        f.startswith("lab/prometheus/rules/") for f in files
    )
    # An older digest (as if the file changed since): that file is named, the others are not.
    lab.settings["config_applied"]["prometheus"]["lab/prometheus/prometheus.yml"] = "0" * 16
    assert edited_since_applied(lab, model, "prometheus") == ["lab/prometheus/prometheus.yml"]
    assert LabState.load(tmp_path).settings["config_applied"]["prometheus"] == files  # what was saved
    assert edited_since_applied(lab, model, "scrape-relay") == []  # no config files declared


def _backup(tmp_path: Path) -> Path:
    """A well-formed backup directory, as `labctl backup` writes it (without a running lab)."""
    root = tmp_path / "backup"
    files = {
        "lab/lab.json": b'{"stage": "module-3", "ports": {}, "settings": {}}',
        "prometheus/01ABC/meta.json": b"{}",
        "prometheus/01ABC/chunks/000001": b"chunk-bytes" * 100,
        "proxy/spool.sqlite": b"sqlite",
        "proxy/inspect/records.jsonl": b'{"a": 1}\n',
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    model = load_model(REPO)
    manifest = {
        "kind": ops_backup.KIND,
        "format": ops_backup.FORMAT,
        "stage": "module-3",
        "runtime": "native",
        "versions": ops_backup._versions(model),
        "parts": {"prometheus": {}, "proxy": {}, "lab": {}},
        "files": {
            rel: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for rel, d in files.items()
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _refused(root: Path) -> str:
    with pytest.raises(LabError) as err:
        ops_backup.verify(root, load_model(REPO))
    return err.value.message


def test_a_good_backup_verifies(tmp_path: Path) -> None:
    manifest = ops_backup.verify(_backup(tmp_path), load_model(REPO))
    assert manifest.stage == "module-3" and set(manifest.parts) == {"prometheus", "proxy", "lab"}


def test_corrupt_truncated_extra_and_missing_files_are_each_named(tmp_path: Path) -> None:
    root = _backup(tmp_path)
    chunk = root / "prometheus/01ABC/chunks/000001"
    data = bytearray(chunk.read_bytes())
    data[5] ^= 1
    chunk.write_bytes(bytes(data))
    (root / "proxy/inspect/records.jsonl").write_bytes(b'{"a"')
    (root / "proxy/spool.sqlite").unlink()
    (root / "stray.txt").write_text("?")
    message = _refused(root)
    assert "nothing was restored and the lab is unchanged" in message
    assert "prometheus/01ABC/chunks/000001: its SHA-256 differs from the manifest's (corrupt)" in message
    assert "proxy/inspect/records.jsonl: 4 bytes, the manifest says 9 (truncated)" in message
    assert "proxy/spool.sqlite: missing" in message
    assert "stray.txt: not in the manifest" in message


def test_partial_foreign_future_and_incompatible_backups_are_refused(tmp_path: Path) -> None:
    root = _backup(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())

    def write(doc: object) -> None:
        (root / "manifest.json").write_text(json.dumps(doc))

    write({**manifest, "format": 99})
    assert "the backup has format 99; this labctl reads format 1" in _refused(root)
    write({**manifest, "versions": {**manifest["versions"], "prometheus": "2.53.0"}})
    assert "the backup's TSDB is from Prometheus 2.53.0" in _refused(root)
    write({**manifest, "files": {**manifest["files"], "../outside": {"bytes": 1, "sha256": "x"}}})
    assert "../outside: a path outside the backup" in _refused(root)
    write({"kind": "something-else"})
    assert "is not a labctl backup manifest" in _refused(root)
    (root / "manifest.json").write_text("{not json")
    assert "is unreadable" in _refused(root)
    (root / "manifest.json").unlink()
    assert "has no manifest.json: not a complete labctl backup" in _refused(root)
    assert "is not a directory" in _refused(tmp_path / "nowhere")


def test_grafana_provisioning_is_checked_before_grafana_is_asked(tmp_path: Path) -> None:
    # Grafana itself cannot run on these machines: what `labctl reload grafana` checks before it calls the
    # provisioning reload API is tested here; the API call itself only runs against a real Grafana (docker).
    import shutil

    from labctl.ops.reload import _validate_grafana

    shutil.copytree(REPO / "dashboards", tmp_path / "dashboards")
    _validate_grafana(tmp_path)  # the lab's own files pass
    source = tmp_path / "dashboards" / "provisioning" / "datasources" / "prometheus.yaml"
    source.write_text(source.read_text().replace("uid: lab-prometheus", "uid: renamed"))
    with pytest.raises(LabError) as err:
        _validate_grafana(tmp_path)
    assert (
        "uses datasource uid 'lab-prometheus', which no provisioning file defines "
        "(lab-jaeger, lab-victorialogs, renamed)" in err.value.message
    )
    source.write_text("apiVersion: 1\ndatasources: [\n")
    with pytest.raises(LabError) as err:
        _validate_grafana(tmp_path)
    assert "dashboards/provisioning/datasources/prometheus.yaml: not valid YAML" in err.value.message


def test_a_half_written_last_record_is_cut_from_the_copied_log(tmp_path: Path) -> None:
    log = tmp_path / "records.jsonl"
    log.write_bytes(b'{"a": 1}\n' * 200_000 + b'{"b": ')  # the writer was mid-line when it was copied
    ops_backup._trim_to_last_line(log)
    assert log.read_bytes().endswith(b'{"a": 1}\n') and log.stat().st_size == 9 * 200_000
    ops_backup._trim_to_last_line(log)  # whole lines: unchanged
    assert log.stat().st_size == 9 * 200_000


def test_grafana_database_is_copied_consistently_while_written_and_put_back_in_place(tmp_path: Path) -> None:
    # Grafana cannot run here; its database is SQLite, which it writes while a backup runs. A writer thread
    # commits pairs of rows the whole time: the copy must hold whole transactions only (an even count), pass
    # SQLite's integrity check, and be what a restore puts in Grafana's data dir. (The docker variant —
    # pause the container, `docker cp`, unpause — needs Grafana's image and is not run here.)
    import contextlib
    import sqlite3
    import threading

    from labctl.runtimes.base import get_runtime

    lab = LabState(dir=tmp_path / "lab", runtime="native", stage="module-4")
    db = lab.data_dir("grafana") / "grafana.db"
    db.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE dashboard_version (id INTEGER PRIMARY KEY, body TEXT)")
        conn.commit()
    stop = threading.Event()
    commits = [0]

    def write() -> None:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            while not stop.is_set():
                with conn:
                    conn.executemany("INSERT INTO dashboard_version (body) VALUES (?)", [("x" * 500,)] * 2)
                commits[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while commits[0] < 200:  # a few hundred KB, most of it still in the write-ahead log
            stop.wait(0.01)
        dest = tmp_path / "backup" / "grafana"
        part = ops_backup._backup_grafana(get_runtime(lab, load_model(REPO)), dest)
    finally:
        stop.set()
        writer.join()
    assert part == {"database": "grafana.db"}
    with contextlib.closing(sqlite3.connect(dest / "grafana.db")) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        copied = copy.execute("SELECT count(*) FROM dashboard_version").fetchone()[0]
    assert copied > 0 and copied % 2 == 0

    # Restore: the backup's database replaces the current one, with the write-ahead log a killed Grafana
    # left beside it (SQLite would replay it onto the restored file); a failure puts both back.
    manifest = ops_backup.Manifest(tmp_path / "backup", {"parts": {"grafana": part}})
    wal = db.with_name("grafana.db-wal")
    wal.write_bytes(b"frames of the old database")
    with ops_backup._swapped_native(lab, manifest, ["grafana"]):
        assert db.read_bytes() == (dest / "grafana.db").read_bytes() and not wal.exists()
    assert not list(lab.dir.glob("restore-previous-*"))
    wal.write_bytes(b"frames of the old database")
    current = db.read_bytes()
    (dest / "grafana.db").write_bytes(b"another database")
    seen = []

    def restore_whose_start_fails() -> None:
        with ops_backup._swapped_native(lab, manifest, ["grafana"]):
            seen.append(db.read_bytes())
            raise RuntimeError("the lab did not start")

    with pytest.raises(RuntimeError):
        restore_whose_start_fails()
    assert seen == [b"another database"]
    assert db.read_bytes() == current and wal.read_bytes() == b"frames of the old database"


def test_a_restored_spool_is_not_overridden_by_a_killed_proxy_s_write_ahead_log(tmp_path: Path) -> None:
    # The proxy's spool is SQLite in WAL mode; a proxy killed with SIGKILL leaves spool.sqlite-wal holding
    # committed requests. Left beside the restored spool, SQLite would replay it: the old requests would
    # come back and the backup's would be lost.
    import contextlib
    import sqlite3

    def spool(path: Path, body: str, rows: int, keep_wal: bool) -> None:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, body TEXT)")
        with conn:
            conn.executemany("INSERT INTO requests (body) VALUES (?)", [(body,)] * rows)
        if keep_wal:  # as if killed: the frames stay in the log, never checkpointed into the file
            shutil.copy(path.with_name(path.name + "-wal"), tmp_path / "kept-wal")
            conn.close()
            shutil.copy(tmp_path / "kept-wal", path.with_name(path.name + "-wal"))
        else:
            conn.close()

    import shutil

    backup = tmp_path / "backup" / "proxy"
    backup.mkdir(parents=True)
    spool(backup / "spool.sqlite", "from the backup", 3, keep_wal=False)
    lab = LabState(dir=tmp_path / "lab", runtime="native", stage="module-3")
    live = lab.data_dir("proxy") / "spool.sqlite"
    live.parent.mkdir(parents=True)
    spool(live, "written after the backup", 50, keep_wal=True)
    assert live.with_name("spool.sqlite-wal").stat().st_size > 0
    manifest = ops_backup.Manifest(tmp_path / "backup", {"parts": {"proxy": {}}})
    with (
        ops_backup._swapped_native(lab, manifest, ["proxy"]),
        contextlib.closing(sqlite3.connect(live)) as conn,
    ):
        rows = conn.execute("SELECT body, count(*) FROM requests GROUP BY body").fetchall()
    assert rows == [("from the backup", 3)]
