"""labctl.install: where binaries are found, when a build is skipped, and how official archives are
downloaded, checked and unpacked (served here by a local HTTP server: never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.install import BINARIES, cache_dir, env_var_for, grafana_home, install, resolve_binary
from labctl.install.alertmanager import install_alertmanager
from labctl.install.archives import MIRROR_VAR, platform_names, url_var
from labctl.install.collector import build_fingerprint, install_collector
from labctl.install.download import expected_sha256
from labctl.install.gobuild import is_up_to_date, stamp_path
from labctl.install.ospackage import advice, apt_candidate, upstream_version
from labctl.install.prometheus import install_prometheus
from labctl.model import load_model
from labctl.state import free_port
from tests.configs.confhelpers import REPO

GO = shutil.which("go")
# The lab's real cache (where tests/run-all.sh installed the binaries), read before any isolation.
REAL_CACHE = cache_dir()
ORIGINAL_PATH = os.environ.get("PATH", "")


OS, ARCH = platform_names()
COLLECTOR_VERSION = "0.165.0"  # the tag of LAB_COLLECTOR_IMAGE in compose/versions.env
PROMETHEUS_VERSION = "3.16.0"
GRAFANA_VERSION = "12.2.0"
COLLECTOR_ARCHIVE = f"otelcol-contrib_{COLLECTOR_VERSION}_{OS}_{ARCH}.tar.gz"
COLLECTOR_SUMS = "opentelemetry-collector-releases_otelcol-contrib_checksums.txt"
PROMETHEUS_TOP = f"prometheus-{PROMETHEUS_VERSION}.{OS}-{ARCH}"
GRAFANA_ARCHIVE = f"grafana-{GRAFANA_VERSION}.{OS}-{ARCH}.tar.gz"


def _dead_url() -> str:
    """A loopback URL nothing listens on: connection refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No override variables, an empty cache, a PATH without the lab's binaries, downloads to nowhere."""
    for name in [*BINARIES, "otelcol-contrib"]:
        monkeypatch.delenv(env_var_for(name), raising=False)
    for component in ("collector", "prometheus", "grafana"):
        monkeypatch.delenv(url_var(component), raising=False)
    monkeypatch.delenv("LABCTL_GRAFANA_HOME", raising=False)
    monkeypatch.delenv("LABCTL_INSTALL_FROM", raising=False)
    # Any download a test does not serve itself fails locally instead of reaching the internet.
    monkeypatch.setenv(MIRROR_VAR, _dead_url())
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    (tmp_path / "path").mkdir()
    return tmp_path


def _tar_gz(members: list[tarfile.TarInfo | tuple[str, bytes, int]]) -> bytes:
    """A real .tar.gz from (name, content, mode) files, or prepared TarInfo entries (links)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, content, mode = member
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _script(name: str, version: str) -> bytes:
    """A small executable standing in for the real binary: prints its version like the real one."""
    return f"#!/bin/sh\necho '{name} version {version}'\n".encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Mirror:
    """A local release mirror: files under root, served over HTTP on a free loopback port."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def collector(self, archive: bytes, checksum: str | None = None) -> None:
        """The goreleaser layout: one checksums file listing every archive of the release."""
        folder = f"collector/{COLLECTOR_VERSION}"
        self.put(f"{folder}/{COLLECTOR_ARCHIVE}", archive)
        other = f"otelcol-contrib_{COLLECTOR_VERSION}_windows_amd64.tar.gz"
        self.put(
            f"{folder}/{COLLECTOR_SUMS}",
            f"{'0' * 64}  {other}\n{checksum or _sha(archive)}  {COLLECTOR_ARCHIVE}\n".encode(),
        )


@pytest.fixture
def mirror(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    root = isolated / "mirror"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv(MIRROR_VAR, url)
        yield Mirror(root, url, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _nothing_installed(cache: Path) -> None:
    assert not (cache / "bin").exists() or not any((cache / "bin").iterdir())
    assert not (cache / "dist").exists() or not any((cache / "dist").iterdir())
    assert not list(cache.glob(".download-*")), "the temporary download folder was left behind"


def _executable(path: Path, source: Path | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_env_var_names() -> None:
    assert env_var_for("otelcol-lab") == "LABCTL_OTELCOL_LAB_BIN"
    assert env_var_for("promtool") == "LABCTL_PROMTOOL_BIN"


def test_missing_binary_names_the_install_command(isolated: Path) -> None:
    with pytest.raises(LabError) as err:
        resolve_binary("otelcol-lab")
    assert "otelcol-lab was not found" in err.value.message
    assert "labctl install collector" in (err.value.hint or "")
    assert "LABCTL_OTELCOL_LAB_BIN" in (err.value.hint or "")
    with pytest.raises(LabError) as err:
        resolve_binary("promtool")
    assert "labctl install prometheus" in (err.value.hint or "")


@pytest.mark.integration
def test_order_is_override_then_path_then_cache(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _executable(isolated / "cache" / "bin" / "prometheus")
    assert resolve_binary("prometheus") == cached
    on_path = _executable(isolated / "path" / "prometheus")
    assert resolve_binary("prometheus") == on_path
    override = _executable(isolated / "elsewhere" / "prom")
    monkeypatch.setenv("LABCTL_PROMETHEUS_BIN", str(override))
    assert resolve_binary("prometheus") == override


@pytest.mark.integration
def test_an_old_prometheus_on_path_is_passed_over(isolated: Path) -> None:
    old = isolated / "path" / "prometheus"
    old.write_bytes(_script("prometheus,", "2.42.0 (branch: debian/sid)"))
    old.chmod(0o755)
    cached = _executable(isolated / "cache" / "bin" / "prometheus")
    assert resolve_binary("prometheus") == cached
    old.write_bytes(_script("prometheus,", "3.16.0 (branch: HEAD)"))
    assert resolve_binary("prometheus") == old


def test_override_to_a_non_executable_is_an_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = isolated / "not-executable"
    target.write_text("")
    monkeypatch.setenv("LABCTL_PROMETHEUS_BIN", str(target))
    with pytest.raises(LabError) as err:
        resolve_binary("prometheus")
    assert "LABCTL_PROMETHEUS_BIN" in err.value.message and "not an executable" in err.value.message


def test_unknown_binary_and_component(isolated: Path) -> None:
    with pytest.raises(LabError, match="unknown binary"):
        resolve_binary("zipkin")
    with pytest.raises(LabError) as err:
        install("zipkin")
    assert (
        "collector, prometheus, alertmanager, victorialogs, jaeger, grpc-front, grafana, claude-code, all"
        in (err.value.hint or "")
    )


def test_grafana_install_says_how_to_get_it(isolated: Path) -> None:
    # The archive cannot be reached (the mirror points at a closed port): every other way is named.
    with pytest.raises(LabError) as err:
        install("grafana")
    assert "could not download" in err.value.message and GRAFANA_ARCHIVE in err.value.message
    hint = err.value.hint or ""
    assert "labctl --runtime docker up module-4" in hint
    assert (
        f"{GRAFANA_ARCHIVE}.sha256" in hint and MIRROR_VAR in hint and "LABCTL_GRAFANA_DOWNLOAD_URL" in hint
    )
    assert "LABCTL_GRAFANA_BIN" in hint
    assert "--from go" not in hint  # Grafana is never built here
    _nothing_installed(isolated / "cache")


def test_grafana_user_binary_is_resolved_with_its_home(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user-provided binary laid out like the official archive (bin/grafana beside conf/defaults.ini).
    home = isolated / "grafana-12.2.0"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "defaults.ini").write_text("[server]\n")
    grafana = _executable(home / "bin" / "grafana")
    monkeypatch.setenv("LABCTL_GRAFANA_BIN", str(grafana))
    (result,) = install("grafana")
    assert result == {
        "component": "grafana",
        "binary": str(grafana),
        "home": str(home),
        "built": False,
        "seconds": 0.0,
    }


def test_grafana_binary_outside_an_archive_is_explained(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_GRAFANA_BIN", str(_executable(isolated / "loose" / "bin" / "grafana")))
    with pytest.raises(LabError) as err:
        install("grafana")
    assert "conf/defaults.ini" in err.value.message and "LABCTL_GRAFANA_HOME" in (err.value.hint or "")


@pytest.mark.integration
def test_install_all_reports_grafana_without_failing(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Point the cache at the real, already built binaries (tests/run-all.sh built them): nothing rebuilds.
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(REAL_CACHE))
    monkeypatch.setenv("PATH", ORIGINAL_PATH)  # go (and node, which decided how Prometheus was built)
    if shutil.which("grafana"):
        pytest.skip("a grafana on PATH would be used as is")
    results = {r["component"]: r for r in install("all")}
    assert results["collector"]["built"] is False
    assert results["prometheus"]["built"] is False
    assert results["alertmanager"]["built"] is False
    # Grafana's archive is unreachable (the isolated mirror is a closed port): reported, not raised.
    assert results["grafana"]["binary"] is None and "could not download" in str(results["grafana"]["error"])
    assert "--runtime docker" in str(results["grafana"]["hint"])


@pytest.mark.integration
def test_cached_builds_are_up_to_date() -> None:
    # run-all.sh installed them with `labctl install`: the stamps match the sources and pinned versions.
    assert install_collector()["built"] is False
    assert install_prometheus()["built"] is False
    assert install_alertmanager()["built"] is False


@pytest.mark.integration
def test_alertmanager_build_is_the_pinned_release_and_checks_the_lab_config() -> None:
    # The binaries report the pinned module's release; amtool accepts lab/alertmanager/alertmanager.yml.
    pinned = load_model(REPO).versions["LAB_ALERTMANAGER_MODULE_VERSION"].lstrip("v")
    for name in ("alertmanager", "amtool"):
        out = subprocess.run(
            [str(REAL_CACHE / "bin" / name), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert f"version {pinned}" in out.stdout + out.stderr, (name, out.stdout, out.stderr)
    config = REPO / "lab" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run(
        [str(REAL_CACHE / "bin" / "amtool"), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    assert "2 inhibit rules" in out.stdout


@pytest.mark.integration
def test_collector_fingerprint_follows_the_sources(tmp_path: Path) -> None:
    # A copy of the tree with one changed line in main.go must not count as up to date.
    root = tmp_path / "repo"
    shutil.copytree(REPO / "collector-configs" / "distribution", root / "collector-configs" / "distribution")
    shutil.copytree(REPO / "compose", root / "compose")
    shutil.copytree(REPO / "lab", root / "lab", ignore=shutil.ignore_patterns("tests", "*.md"))
    before = build_fingerprint(root)
    assert before == build_fingerprint(REPO)
    main = root / "collector-configs" / "distribution" / "main.go"
    main.write_text(main.read_text() + "\n// changed\n")
    assert build_fingerprint(root) != before
    binary_path = REAL_CACHE / "bin" / "otelcol-lab"
    assert is_up_to_date([binary_path], before)
    assert not is_up_to_date([binary_path], build_fingerprint(root))
    assert stamp_path(binary_path).name == ".otelcol-lab.stamp.json"


def test_without_go_a_cached_build_is_used_and_a_missing_one_explained(isolated: Path) -> None:
    # PATH has no Go here. An empty cache: the official archive is tried (unreachable here) and the
    # error names every other way: Go, docker, a mirror, a binary of one's own.
    with pytest.raises(LabError) as err:
        install("collector")
    assert "could not download" in err.value.message and COLLECTOR_SUMS in err.value.message
    hint = err.value.hint or ""
    assert (
        "install Go" in hint and "--runtime docker up module-2" in hint and "LABCTL_OTELCOL_LAB_BIN" in hint
    )
    with pytest.raises(LabError) as err:
        install("collector", source="go")  # asked for Go explicitly: no fallback
    assert "Go toolchain" in err.value.message
    # A binary already in the cache is used as is: it cannot be checked against the sources without Go.
    cached = _executable(isolated / "cache" / "bin" / "otelcol-lab")
    (result,) = install("collector")
    assert result["built"] is False and result["binary"] == str(cached)
    assert "without Go" in str(result["note"])


@pytest.mark.integration
def test_a_prometheus_with_its_ui_stays_current_without_node(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Node.js gone later (PATH has only Go): the cached build with its UI is still up to date, never
    # replaced by one without the UI.
    from labctl.install.prometheus import want_ui

    monkeypatch.setenv("LABCTL_CACHE_DIR", str(REAL_CACHE))
    stamp = (REAL_CACHE / "bin" / ".prometheus.stamp.json").read_text()
    if '"web_ui": "True"' not in stamp:
        pytest.skip("the cached Prometheus was built without its UI (no Node.js on this machine)")
    monkeypatch.setenv("PATH", str(Path(GO).parent) if GO else "")
    assert not want_ui()
    assert install_prometheus()["built"] is False


# --- official release archives, served by a local mirror ---------------------------------------------


@pytest.mark.integration
def test_collector_archive_installs_and_fills_the_otelcol_lab_role(
    mirror: Mirror, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _tar_gz(
        [
            ("otelcol-contrib", _script("otelcol-contrib", COLLECTOR_VERSION), 0o755),
            ("README.md", b"x", 0o644),
        ]
    )
    mirror.collector(archive)
    (result,) = install("collector")  # no Go on PATH: the archive
    cache = isolated / "cache"
    binary = cache / "bin" / "otelcol-contrib"
    assert (
        result["source"] == "archive" and result["built"] is True and result["version"] == COLLECTOR_VERSION
    )
    assert result["binary"] == str(binary) and result["sha256"] == _sha(archive)
    assert "otelcol-contrib 0.165.0 serves as otelcol-lab" in str(result["note"])
    assert mirror.requests == [
        f"/collector/{COLLECTOR_VERSION}/{COLLECTOR_SUMS}",
        f"/collector/{COLLECTOR_VERSION}/{COLLECTOR_ARCHIVE}",
    ]
    # The otelcol-lab role is filled by it, and the lab says which binary that is.
    capsys.readouterr()
    resolved = resolve_binary("otelcol-lab")
    assert resolved == binary
    said = " ".join(capsys.readouterr().out.split())  # the console may wrap the line
    assert "otelcol-lab: using" in said and "the official otelcol-contrib 0.165.0" in said
    out = subprocess.run([str(resolved), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"otelcol-contrib version {COLLECTOR_VERSION}"
    stamp = json.loads(stamp_path(binary).read_text())
    assert stamp["version"] == COLLECTOR_VERSION and stamp["source"] == "archive"
    assert stamp["sha256"] == _sha(archive) and stamp["url"].endswith(COLLECTOR_ARCHIVE)
    # Installed once: a second install downloads nothing.
    (again,) = install("collector")
    assert again["built"] is False and len(mirror.requests) == 2
    # The lab's own build, once there, takes the role back.
    own = _executable(cache / "bin" / "otelcol-lab")
    assert resolve_binary("otelcol-lab") == own


def test_a_checksum_mismatch_installs_nothing(mirror: Mirror, isolated: Path) -> None:
    archive = _tar_gz([("otelcol-contrib", _script("otelcol-contrib", COLLECTOR_VERSION), 0o755)])
    mirror.collector(archive, checksum=_sha(archive + b"tampered"))
    with pytest.raises(LabError) as err:
        install("collector")
    assert "checksum mismatch" in err.value.message and COLLECTOR_ARCHIVE in err.value.message
    assert _sha(archive) in err.value.message and "nothing was installed" in err.value.message
    _nothing_installed(isolated / "cache")
    with pytest.raises(LabError, match="otelcol-lab was not found"):
        resolve_binary("otelcol-lab")


def test_a_checksum_file_without_the_archive_is_refused(mirror: Mirror, isolated: Path) -> None:
    folder = f"collector/{COLLECTOR_VERSION}"
    mirror.put(f"{folder}/{COLLECTOR_ARCHIVE}", _tar_gz([("otelcol-contrib", b"#!/bin/sh\n", 0o755)]))
    mirror.put(f"{folder}/{COLLECTOR_SUMS}", f"{'1' * 64}  something-else.tar.gz\n".encode())
    with pytest.raises(LabError) as err:
        install("collector")
    assert f"has no SHA-256 for {COLLECTOR_ARCHIVE}" in err.value.message
    _nothing_installed(isolated / "cache")


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "evil",
    [
        ("../escaped", b"gotcha", 0o644),
        ("/tmp/labctl-absolute-escape", b"gotcha", 0o644),
        _link("link", "../../escaped", tarfile.SYMTYPE),
        _link("abs-link", "/etc/passwd", tarfile.SYMTYPE),
        _link("hard", "../escaped", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"],
)
def test_an_archive_member_outside_the_target_is_refused(
    mirror: Mirror, isolated: Path, evil: tarfile.TarInfo | tuple[str, bytes, int]
) -> None:
    # The checksum matches (the mirror is consistent): the archive itself is refused before unpacking.
    archive = _tar_gz([("otelcol-contrib", _script("otelcol-contrib", COLLECTOR_VERSION), 0o755), evil])
    mirror.collector(archive)
    with pytest.raises(LabError) as err:
        install("collector")
    assert "refusing to unpack" in err.value.message and "nothing was installed" in err.value.message
    _nothing_installed(isolated / "cache")
    assert not (isolated / "escaped").exists() and not (isolated / "cache" / "escaped").exists()
    assert not Path("/tmp/labctl-absolute-escape").exists()


def test_a_network_failure_says_what_to_do(isolated: Path) -> None:
    # The isolated mirror is a closed port: connection refused, named with its URL.
    with pytest.raises(LabError) as err:
        install("prometheus", source="archive")
    message, hint = err.value.message, err.value.hint or ""
    assert message.startswith("could not download http://127.0.0.1:") and "sha256sums.txt" in message
    assert "refused" in message.lower()
    assert "--runtime docker up module-3" in hint and "--from go" in hint
    assert f"prometheus-{PROMETHEUS_VERSION}.{OS}-{ARCH}.tar.gz" in hint and "LABCTL_PROMETHEUS_BIN" in hint
    _nothing_installed(isolated / "cache")


def test_a_missing_file_on_the_mirror_names_the_status(mirror: Mirror, isolated: Path) -> None:
    with pytest.raises(LabError) as err:
        install("grafana")
    assert "answered 404" in err.value.message and f"/grafana/{GRAFANA_VERSION}/" in err.value.message
    _nothing_installed(isolated / "cache")


def _prometheus_archive() -> bytes:
    return _tar_gz(
        [
            (f"{PROMETHEUS_TOP}/prometheus", _script("prometheus", PROMETHEUS_VERSION), 0o755),
            (f"{PROMETHEUS_TOP}/promtool", _script("promtool", PROMETHEUS_VERSION), 0o755),
            (f"{PROMETHEUS_TOP}/LICENSE", b"Apache-2.0", 0o644),
        ]
    )


@pytest.mark.integration
def test_prometheus_archive_from_a_per_component_url(
    mirror: Mirror, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LABCTL_PROMETHEUS_DOWNLOAD_URL beats the general mirror; {version} is filled in.
    archive = _prometheus_archive()
    name = f"{PROMETHEUS_TOP}.tar.gz"
    mirror.put(f"own/v{PROMETHEUS_VERSION}/{name}", archive)
    mirror.put(f"own/v{PROMETHEUS_VERSION}/sha256sums.txt", f"{_sha(archive)}  {name}\n".encode())
    monkeypatch.setenv("LABCTL_PROMETHEUS_DOWNLOAD_URL", mirror.url + "/own/v{version}/")
    (result,) = install("prometheus", source="archive")
    assert result["built"] is True and result["source"] == "archive"
    assert mirror.requests == [
        f"/own/v{PROMETHEUS_VERSION}/sha256sums.txt",
        f"/own/v{PROMETHEUS_VERSION}/{name}",
    ]
    for tool in ("prometheus", "promtool"):
        path = resolve_binary(tool)
        assert path == isolated / "cache" / "bin" / tool
        out = subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"{tool} version {PROMETHEUS_VERSION}"


@pytest.mark.integration
def test_from_archive_and_auto_selection(
    mirror: Mirror, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _prometheus_archive()
    mirror.put(f"prometheus/{PROMETHEUS_VERSION}/{PROMETHEUS_TOP}.tar.gz", archive)
    mirror.put(
        f"prometheus/{PROMETHEUS_VERSION}/sha256sums.txt",
        f"{_sha(archive)}  {PROMETHEUS_TOP}.tar.gz\n".encode(),
    )
    with pytest.raises(LabError, match="is not a source"):
        install("prometheus", source="binaries")
    monkeypatch.setenv("LABCTL_INSTALL_FROM", "nonsense")
    with pytest.raises(LabError, match="LABCTL_INSTALL_FROM"):
        install("prometheus")
    # `labctl install --from archive` through the real CLI, with Go on PATH when this machine has it:
    # the archive is used all the same, and nothing is built.
    monkeypatch.delenv("LABCTL_INSTALL_FROM")
    path = os.pathsep.join([str(isolated / "path"), *([str(Path(GO).parent)] if GO else [])])
    env = {**os.environ, "PATH": path, "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "labctl", "install", "prometheus", "--from", "archive"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"installed {PROMETHEUS_VERSION} from the official archive" in run.stdout
    assert len(mirror.requests) == 2
    # Later, `auto` (Go or not) keeps the current official build instead of rebuilding it.
    monkeypatch.setenv("PATH", path)
    (result,) = install("prometheus")
    assert result["built"] is False and result["source"] == "archive" and len(mirror.requests) == 2
    # LABCTL_INSTALL_FROM=archive with --force: downloaded again.
    monkeypatch.setenv("LABCTL_INSTALL_FROM", "archive")
    (result,) = install("prometheus", force=True)
    assert result["built"] is True and len(mirror.requests) == 4


@pytest.mark.integration
def test_grafana_archive_installs_with_its_home(mirror: Mirror, isolated: Path) -> None:
    top = f"grafana-v{GRAFANA_VERSION}"
    archive = _tar_gz(
        [
            (f"{top}/bin/grafana", _script("grafana", GRAFANA_VERSION), 0o755),
            (f"{top}/conf/defaults.ini", b"[server]\n", 0o644),
            (f"{top}/public/index.html", b"<html></html>", 0o644),
        ]
    )
    folder = f"grafana/{GRAFANA_VERSION}"
    mirror.put(f"{folder}/{GRAFANA_ARCHIVE}", archive)
    mirror.put(f"{folder}/{GRAFANA_ARCHIVE}.sha256", _sha(archive).encode())  # a lone digest, as published
    (result,) = install("grafana")
    home = isolated / "cache" / "dist" / GRAFANA_ARCHIVE.removesuffix(".tar.gz")
    assert result["built"] is True and result["home"] == str(home)
    binary = resolve_binary("grafana")
    assert binary == isolated / "cache" / "bin" / "grafana"
    assert grafana_home(binary) == home  # conf/ and public/ found from the linked binary
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"grafana version {GRAFANA_VERSION}"
    with pytest.raises(LabError, match="cannot be built here"):
        install("grafana", source="go")


@pytest.mark.integration
def test_without_go_or_archive_the_os_prometheus_is_judged_by_major_version(
    isolated: Path,
) -> None:
    # apt-cache (local package lists, no network) on PATH; no Go; the archive unreachable.
    apt_cache = shutil.which("apt-cache", path=ORIGINAL_PATH)
    if not apt_cache:
        pytest.skip("no apt-cache on this machine")
    (isolated / "path" / "apt-cache").symlink_to(apt_cache)
    candidate = apt_candidate("prometheus")
    if not candidate:
        pytest.skip("the package lists have no prometheus")
    with pytest.raises(LabError) as err:
        install("prometheus")
    hint = err.value.hint or ""
    have = upstream_version(candidate)
    assert f"the OS package prometheus {have}" in hint
    if have.split(".")[0] != PROMETHEUS_VERSION.split(".")[0]:  # Debian 12: 2.42 — refused, with why
        assert "is not offered" in hint and "apt-get install" not in hint


def test_os_package_advice_and_checksum_lines() -> None:
    assert upstream_version("2.42.0+ds-5+deb12u1") == "2.42.0"
    assert upstream_version("1:3.16.0-1") == "3.16.0"
    refused = advice("prometheus", "2.42.0+ds-5+b5", PROMETHEUS_VERSION) or ""
    assert "not offered" in refused and "Prometheus 2" in refused and "major 3" in refused
    offered = advice("prometheus", "3.16.1-1", PROMETHEUS_VERSION) or ""
    assert "same major version" in offered and "apt-get install prometheus" in offered
    assert advice("prometheus", None, PROMETHEUS_VERSION) is None
    digest = "ab" * 32
    assert expected_sha256(f"{'cd' * 32}  other.tar.gz\n{digest} *a.tar.gz\n", "a.tar.gz", "s") == digest
    assert expected_sha256(f"{digest.upper()}\n", "a.tar.gz", "s") == digest
    with pytest.raises(LabError, match=r"has no SHA-256 for a\.tar\.gz"):
        expected_sha256(f"{digest}  b.tar.gz\n", "a.tar.gz", "s")
