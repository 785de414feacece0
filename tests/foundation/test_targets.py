"""Prometheus's files for the native runtime: config + rules linked to the repository's, file_sd targets from the lab's ports."""

from __future__ import annotations

import json

import yaml

from labctl.model import load_model
from labctl.runtimes.targets import SCRAPE_TARGETS, install_prometheus_config, write_targets
from labctl.state import LabState, allocate_ports


def test_prometheus_data_dir_gets_config_rules_and_a_target_per_job(tmp_path):
    model = load_model()
    lab = LabState(dir=tmp_path, ports=allocate_ports(model.default_ports(), offset=7))
    data = lab.data_dir("prometheus")
    install_prometheus_config(model, data)
    write_targets(model, data / "targets", lab.addr)

    config = yaml.safe_load((data / "prometheus.yml").read_text())
    files = {
        f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]
    }
    files |= {
        f for am in config["alerting"]["alertmanagers"] for sd in am["file_sd_configs"] for f in sd["files"]
    }
    assert files == {f"targets/{name}" for name in SCRAPE_TARGETS}, "every job's targets file is written"

    rules = sorted(p.name for p in (data / "rules").iterdir())
    expected = sorted(p.name for p in (model.root / "lab" / "prometheus" / "rules").glob("*.yml"))
    assert rules == expected and rules
    # The repository's own files, so an edit is what a reload reads (no stale copy).
    assert (data / "prometheus.yml").resolve() == (
        model.root / "lab" / "prometheus" / "prometheus.yml"
    ).resolve()
    assert (data / "rules").resolve() == (model.root / "lab" / "prometheus" / "rules").resolve()

    collector = json.loads((data / "targets" / "collector.json").read_text())
    assert collector == [
        {"targets": [f"127.0.0.1:{8889 + 7}"], "labels": {"service": "collector", "layer": "2"}}
    ]
    internal = json.loads((data / "targets" / "collector-internal.json").read_text())
    assert internal[0]["targets"] == [f"127.0.0.1:{8888 + 7}"]
    assert not list((data / "targets").glob(".*.tmp")), "targets are replaced atomically"


def test_alertmanager_target_follows_the_stage_and_goes_through_the_alert_relay_natively(tmp_path):
    model = load_model()
    lab = LabState(dir=tmp_path, ports=allocate_ports(model.default_ports(), offset=7))
    targets = tmp_path / "targets"
    write_targets(model, targets, lab.addr, relayed=True, running=model.stage_services("module-3", "native"))
    assert json.loads((targets / "alertmanager.json").read_text()) == [], "no Alertmanager before module-4"
    write_targets(model, targets, lab.addr, relayed=True, running=model.stage_services("module-4", "native"))
    (group,) = json.loads((targets / "alertmanager.json").read_text())
    assert group["targets"] == [f"127.0.0.1:{19093 + 7}"]  # the alert relay
    assert group["labels"]["instance"] == f"127.0.0.1:{9093 + 7}"


def test_alertmanager_reads_its_webhook_address_from_the_file_labctl_writes(tmp_path):
    from labctl.model import Placement
    from labctl.runtimes.targets import write_receiver_url

    model = load_model()
    lab = LabState(dir=tmp_path, ports=allocate_ports(model.default_ports(), offset=7))
    native = Placement(runtime="native", ports=lab.ports, repo=model.root)
    write_receiver_url(model, tmp_path / "native", native)
    # Natively through the notify relay, so `break network --hop alertmanager-receiver` switches it.
    assert (tmp_path / "native" / "receiver-url").read_text() == f"http://127.0.0.1:{19097 + 7}/api/alerts\n"
    write_receiver_url(model, tmp_path / "docker", Placement(runtime="docker", ports={}, repo=model.root))
    assert (tmp_path / "docker" / "receiver-url").read_text() == "http://notify-receiver:9097/api/alerts\n"
    config = yaml.safe_load((model.root / "lab" / "alertmanager" / "alertmanager.yml").read_text())
    (hook,) = config["receivers"][0]["webhook_configs"]
    assert hook["url_file"] == "receiver-url" and hook["send_resolved"] is True


def test_natively_the_collector_is_scraped_through_the_scrape_relay_with_its_own_instance_label(tmp_path):
    model = load_model()
    lab = LabState(dir=tmp_path, ports=allocate_ports(model.default_ports(), offset=7))
    targets = tmp_path / "targets"
    write_targets(model, targets, lab.addr, relayed=True)
    collector = json.loads((targets / "collector.json").read_text())
    assert collector == [
        {
            "targets": [f"127.0.0.1:{18889 + 7}"],
            "labels": {"service": "collector", "layer": "2", "instance": f"127.0.0.1:{8889 + 7}"},
        }
    ]
    internal = json.loads((targets / "collector-internal.json").read_text())
    assert internal[0]["targets"] == [f"127.0.0.1:{18888 + 7}"]
    assert internal[0]["labels"]["instance"] == f"127.0.0.1:{8888 + 7}"
    # Only the hops with `native_via` go through it.
    proxy = json.loads((targets / "proxy.json").read_text())
    assert proxy[0]["targets"] == [f"127.0.0.1:{4320 + 7}"] and "instance" not in proxy[0]["labels"]
    # Grafana's hop to prometheus.web goes through the query relay; Prometheus scraping itself does not.
    own = json.loads((targets / "prometheus.json").read_text())
    assert own[0]["targets"] == [f"127.0.0.1:{9090 + 7}"] and "instance" not in own[0]["labels"]


def test_a_copy_left_by_an_older_labctl_is_replaced_by_links(tmp_path):
    model = load_model()
    data = tmp_path / "data"
    (data / "rules").mkdir(parents=True)
    (data / "rules" / "stale.yml").write_text("groups: []\n")
    (data / "prometheus.yml").write_text("global: {}\n")
    install_prometheus_config(model, data)
    assert (data / "rules").is_symlink() and (data / "prometheus.yml").is_symlink()
    assert not (model.root / "lab" / "prometheus" / "rules" / "stale.yml").exists()
    install_prometheus_config(model, data)  # again: idempotent
    assert (data / "rules").is_symlink()


def test_up_waits_until_prometheus_notifier_lists_the_alertmanager():
    """`up` returns only once Prometheus would deliver an alert: an answer listing no Alertmanager yet
    (its file_sd target not yet handed to the notifier) keeps it polling; one that lists it ends the wait.
    A local HTTP server answers as Prometheus' /api/v1/alertmanagers does."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from labctl.runtimes.base import alertmanager_known

    listed_after = time.monotonic() + 0.6
    asked: list[float] = []

    class Prometheus(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(time.monotonic())
            ams = [{"url": "http://127.0.0.1:19093/api/v2/alerts"}] if time.monotonic() > listed_after else []
            body = json.dumps({"status": "success", "data": {"activeAlertmanagers": ams}}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/alertmanagers"
        assert alertmanager_known(url, timeout=10)
        assert len(asked) >= 2 and asked[-1] > listed_after, "it returned before the Alertmanager was listed"
        listed_after = float("inf")  # never listed: the wait gives up after its timeout, saying so
        began = time.monotonic()
        assert not alertmanager_known(url, timeout=0.5)
        assert time.monotonic() - began >= 0.5
    finally:
        server.shutdown()
    assert not alertmanager_known(url, timeout=0.3), "a Prometheus that does not answer lists nothing"
