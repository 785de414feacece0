"""The lab model (lab/lab.yaml + compose/versions.env): consistent, and placeholders resolve per runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.model import Placement, load_model, parse_model


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_stages_add_one_layer_each(model):
    stages = sorted(model.stages.values(), key=lambda s: s.layer)
    assert [s.name for s in stages] == ["module-1", "module-2", "module-3", "module-4"]
    previous: set[str] = set()
    for stage in stages:
        services = set(stage.services)
        assert previous < services, f"{stage.name} must keep every service of the stage below"
        added = services - previous
        assert {model.service(s).layer for s in added} == {stage.layer}
        previous = services


def test_every_hop_names_a_real_service_port(model):
    assert model.hops
    for hop in model.hops:
        for service, port in ((hop.target_service, hop.target_port), *hop.also):
            assert port in model.service(service).ports, hop.name
        assert hop.source == "client" or hop.source in model.services


def test_health_and_url_use_declared_ports_and_ports_do_not_clash(model):
    host_ports = [p.host for s in model.services.values() for p in s.ports.values()]
    assert len(host_ports) == len(set(host_ports)), "two services share a default host port"
    for svc in model.services.values():
        assert svc.health.port in svc.ports and svc.health.path.startswith("/")


def test_unknown_module_lists_the_valid_ones(model):
    with pytest.raises(LabError) as err:
        model.stage("module-9")
    assert "module-9" in err.value.message
    for name in ("module-1", "module-2", "module-3", "module-4"):
        assert name in (err.value.hint or "")


def test_versions_are_pinned_exactly(model):
    images = {k: v for k, v in model.versions.items() if k.endswith("_IMAGE")}
    assert {"LAB_COLLECTOR_IMAGE", "LAB_PROMETHEUS_IMAGE", "LAB_GRAFANA_IMAGE", "LAB_PYTHON_IMAGE"} <= set(
        images
    )
    for key, image in images.items():
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and any(c.isdigit() for c in tag), f"{key}={image}"


def test_native_placeholders_use_loopback_host_ports(model, tmp_path: Path):
    ports = model.default_ports()
    ports["collector"]["otlp_grpc"] = 24317
    ports["otlp-relay"]["otlp_grpc"] = 24319
    where = Placement(
        runtime="native", ports=ports, repo=model.root, data_dirs={s: tmp_path / s for s in model.services}
    )
    env = model.service_env("proxy", where, ["proxy", "collector"])
    # Natively the proxy exports through the OTLP relay (the proxy-collector hop's `native_via`).
    assert env["LAB_PROXY_UPSTREAM"] == "http://127.0.0.1:24319"
    assert env["LAB_PROXY_OTLP_GRPC_LISTEN"] == "127.0.0.1:4317"
    assert env["LAB_PROXY_DATA_DIR"] == str(tmp_path / "proxy")
    assert env["LAB_PROXY_LOCAL_ENV"] == ""  # no lab instance: no local settings file
    with_lab = Placement(**{**where.__dict__, "lab_dir": tmp_path / "lab"})
    local = model.service_env("proxy", with_lab, ["proxy"])["LAB_PROXY_LOCAL_ENV"]
    assert local == str(tmp_path / "lab" / "config" / "proxy" / "local.json")
    # Without the collector in the stage the proxy has no upstream (module-1).
    assert "LAB_PROXY_UPSTREAM" not in model.service_env("proxy", where, ["proxy"])
    col = model.service_env("collector", where, ["proxy", "collector"])
    assert col["LAB_COLLECTOR_INTERNAL_HOST"] == "127.0.0.1"
    assert col["LAB_COLLECTOR_INTERNAL_PORT"] == "8888"
    args = model.native_args("prometheus", where)
    assert f"--config.file={tmp_path / 'prometheus'}/prometheus.yml" in args
    assert "--web.listen-address=127.0.0.1:9090" in args


def test_docker_placeholders_use_service_names_and_container_ports(model):
    where = Placement(runtime="docker", ports={}, repo=model.root)
    env = model.service_env("proxy", where, ["proxy", "collector"])
    assert env["LAB_PROXY_UPSTREAM"] == "http://collector:4317"
    assert env["LAB_PROXY_OTLP_GRPC_LISTEN"] == "0.0.0.0:4317"
    assert model.native_args("collector", where) == ["--config", "/lab/collector-configs/base.yaml"]


def test_every_config_file_the_model_names_exists(model):
    missing = [
        f"{s.name}: {c}" for s in model.services.values() for c in s.config if not (model.root / c).exists()
    ]
    assert not missing, "model names files that do not exist: " + ", ".join(missing)


def test_broken_model_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "lab").mkdir()
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose" / "versions.env").write_text("A=1\n")
    (tmp_path / "lab" / "lab.yaml").write_text("services: {proxy: {layer: 1}\n")
    with pytest.raises(LabError, match="not valid YAML"):
        parse_model(tmp_path)
    (tmp_path / "lab" / "lab.yaml").write_text(
        "services: {}\nstages: {module-1: {layer: 1, services: [ghost]}}\n"
    )
    with pytest.raises(LabError, match="unknown service 'ghost'"):
        parse_model(tmp_path)


def test_unknown_placeholder_is_named(model):
    where = Placement(runtime="native", ports={}, repo=model.root)
    with pytest.raises(LabError, match=r"\{nonsense\}"):
        model.resolve("{nonsense}", "proxy", where)


@pytest.mark.parametrize(
    ("relay_name", "stage_needs"),
    [("otlp-relay", "collector"), ("scrape-relay", "prometheus"), ("query-relay", "grafana")],
)
def test_each_relay_relays_exactly_the_hops_that_name_it(
    model, tmp_path: Path, relay_name: str, stage_needs: str
):
    """lab.yaml says it twice — hops' `native_via` (what the clients are pointed at) and the relay's
    --route arguments (what it forwards): they must agree, and the relay is native only, in every stage
    with the client it serves (Prometheus scrapes, Grafana queries)."""
    relay = model.service(relay_name)
    assert relay.runtimes == ("native",)
    where = Placement(
        runtime="native",
        ports=model.default_ports(),
        repo=model.root,
        data_dirs={s: tmp_path / s for s in model.services},
    )
    args = model.native_args(relay_name, where)
    routes = {args[i + 1] for i, a in enumerate(args) if a == "--route"}
    expected = set()
    for hop in model.hops:
        if hop.native_via and hop.native_via[0] == relay_name:
            assert hop.native_via[1] in relay.ports, hop.name
            target = model.service(hop.target_service).port(hop.target_port).host
            expected.add(f"127.0.0.1:{relay.ports[hop.native_via[1]].host}=127.0.0.1:{target}")
    assert routes == expected and expected
    assert all(a.startswith("127.0.0.1:") for a in args if ":" in a and "=" not in a and "/" not in a)
    for stage in model.stages.values():
        assert (stage_needs in stage.services) == (relay_name in stage.services), stage.name
        assert relay_name not in model.stage_services(stage.name, "docker")


def test_every_native_via_names_a_relay_port(model):
    relays = {"otlp-relay", "scrape-relay", "query-relay", "alert-relay", "notify-relay", "events-relay"}
    relays |= {"traces-relay"}
    vias = {hop.name: hop.native_via for hop in model.hops if hop.native_via}
    assert set(vias) == {
        "proxy-collector",
        "collector-prometheus",
        "collector-internal-prometheus",
        "prometheus-grafana",
        "collector-victorialogs",
        "collector-jaeger",
        "prometheus-alertmanager",
        "alertmanager-receiver",
    }
    assert all(service in relays and port in model.service(service).ports for service, port in vias.values())


def test_grafana_queries_prometheus_through_the_query_relay_natively_and_directly_in_docker(
    model, tmp_path: Path
):
    """{hop_addr:SERVICE.PORT}: the address along this service's hop — natively the hop's relay port."""
    ports = {
        **model.default_ports(),
        "query-relay": {"prometheus_web": 29090, "control": 29091},
        "prometheus": {"web": 29999},
    }
    native = Placement(
        runtime="native", ports=ports, repo=model.root, data_dirs={s: tmp_path / s for s in model.services}
    )
    docker = Placement(runtime="docker", ports=ports, repo=model.root)
    assert model.service_env("grafana", native, [])["LAB_PROMETHEUS_URL"] == "http://127.0.0.1:29090"
    assert model.service_env("grafana", docker, [])["LAB_PROMETHEUS_URL"] == "http://prometheus:9090"
    # Grafana's alerts go to Alertmanager itself (its contact point), in both runtimes.
    am = model.default_ports()["alertmanager"]["web"]
    assert model.service_env("grafana", native, [])["LAB_ALERTMANAGER_URL"] == f"http://127.0.0.1:{am}"
    assert model.service_env("grafana", docker, [])["LAB_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    # The proxy's hop to the Collector is relayed natively (the OTLP relay), direct in docker; without a
    # relayed hop from that service it is {addr:...}.
    assert model.resolve("{hop_addr:collector.otlp_grpc}", "proxy", native) == "127.0.0.1:14319"
    assert model.resolve("{hop_addr:collector.otlp_grpc}", "proxy", docker) == "collector:4317"
    assert model.resolve("{hop_addr:prometheus.web}", "proxy", native) == "127.0.0.1:29999"
    with pytest.raises(LabError, match=r"hop_addr:SERVICE\.PORT"):
        model.resolve("{hop_addr:prometheus}", "grafana", native)
    with pytest.raises(LabError, match="no port 'nope'"):
        model.resolve("{hop_addr:prometheus.nope}", "grafana", native)


def test_each_layer_is_followed_through_a_service_of_that_layer(model):
    """`labctl check` and `diagnose --layer` take their layers from lab.yaml: 1..4, each a real service
    that lab.yaml places at that layer, and the stage of that layer runs it."""
    assert list(model.layers) == [1, 2, 3, 4]
    for n, layer in model.layers.items():
        assert model.service(layer.service).layer == n, layer
        assert layer.service in model.stage(f"module-{n}").services, layer
    assert model.layers[3].title == "layer 3 · storage (Prometheus)"


def test_a_layer_naming_an_unknown_service_is_refused(tmp_path: Path):
    root = Path(load_model().root)
    (tmp_path / "lab").mkdir()
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose" / "versions.env").write_text((root / "compose" / "versions.env").read_text())
    text = (root / "lab" / "lab.yaml").read_text()
    (tmp_path / "lab" / "lab.yaml").write_text(text.replace("service: prometheus,", "service: promethus,"))
    with pytest.raises(LabError, match="layer 3 names unknown service 'promethus'"):
        parse_model(tmp_path)
