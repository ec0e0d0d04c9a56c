"""deploy/, checked offline: no Docker engine, no cluster, no network.

- Kubernetes manifests against the OpenAPI-derived JSON schemas bundled in
  ``kubernetes-validate`` (strict: unknown fields fail), for 1.29 and the newest bundled version.
- docker-compose.yml against the Compose Specification schema vendored in ``check-jsonschema``.
- The Grafana dashboard's PromQL against the metrics contract (names, labels, label values).
- Prometheus, OpenTelemetry collector and Grafana provisioning files: structure and the
  cross-references between them; the Dockerfile: stages, user, health check, entry point.
- Every HERALD_* variable set by a manifest is a real setting, and the values parse.
"""

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from pydantic import ValidationError

from app.durations import parse_duration
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "herald.json"

Document = dict[str, Any]

# The metrics contract: name -> {label: allowed values, or None for any value}.
COUNTERS: dict[str, dict[str, frozenset[str] | None]] = {
    "herald_deliveries_total": {"outcome": frozenset({"succeeded", "retry", "dead"})},
    "herald_attempts_total": {
        "error_class": frozenset(
            {"none", "timeout", "connect", "dns", "tls", "blocked", "http_status"}
        ),
        "status_class": frozenset({"2xx", "3xx", "4xx", "5xx", "none"}),
    },
    "herald_rate_limited_waits_total": {},
    "herald_events_ingested_total": {"duplicate": frozenset({"true", "false"})},
    "herald_http_requests_total": {"method": None, "route": None, "status": None},
}
HISTOGRAMS: dict[str, dict[str, frozenset[str] | None]] = {
    "herald_attempt_duration_seconds": {},
    "herald_end_to_end_seconds": {},
    "herald_http_request_duration_seconds": {"route": None},
}
GAUGES: dict[str, dict[str, frozenset[str] | None]] = {
    "herald_due_backlog": {},
    "herald_due_oldest_age_seconds": {},
    "herald_dlq_size": {},
    "herald_circuits_open": {},
    "herald_held_deliveries": {},
}
TARGET_LABELS = {"job", "instance"}


def _series() -> dict[str, dict[str, frozenset[str] | None]]:
    """Every series name a query may use, with the labels it may match on."""
    series = {**COUNTERS, **GAUGES}
    for name, labels in HISTOGRAMS.items():
        series[f"{name}_bucket"] = {**labels, "le": None}
        series[f"{name}_sum"] = labels
        series[f"{name}_count"] = labels
    return series


SERIES = _series()
CONTRACT_METRICS = {*COUNTERS, *HISTOGRAMS, *GAUGES}


def load_yaml_documents(path: Path) -> list[Document]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert all(isinstance(doc, dict) for doc in documents), path
    return cast(list[Document], documents)


def load_yaml(path: Path) -> Document:
    (document,) = load_yaml_documents(path)
    return document


def kubernetes_documents() -> list[Document]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in load_yaml_documents(path)]


def find(kind: str, name: str) -> Document:
    matches = [
        doc
        for doc in kubernetes_documents()
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} documents"
    return matches[0]


def container(deployment: Document) -> Document:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return cast(Document, only)


def config_env() -> dict[str, str]:
    """The environment a pod gets from the ConfigMap and the Secret."""
    config = find("ConfigMap", "herald-config")["data"]
    secret = find("Secret", "herald-secrets")["stringData"]
    return {**config, **secret}


TMP = "/tmp"  # noqa: S108 (the pods' emptyDir mount point, not a file of this test)
SettingsFrom = Callable[[dict[str, str]], Settings]


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch) -> SettingsFrom:
    """Builds Settings from exactly the given environment (no .env, no inherited HERALD_*)."""
    for name in list(os.environ):
        if name.upper().startswith(("HERALD_", "OTEL_")):
            monkeypatch.delenv(name)

    def settings(env: dict[str, str]) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Settings(_env_file=None)

    return settings


def assert_real_settings(names: set[str], where: str) -> None:
    """Settings ignores unknown HERALD_* variables, so a typo would pass silently."""
    fields = set(Settings.model_fields)
    unknown = {
        name for name in names if name.startswith("HERALD_") and name[7:].lower() not in fields
    }
    assert not unknown, f"{where} sets variables that are no Herald setting: {sorted(unknown)}"


# --- Kubernetes -------------------------------------------------------------------------------


# kubernetes-validate ships no type information; these are the two names used from it.
def _kubernetes_validate() -> Callable[[Document, str, bool], str]:
    module = importlib.import_module("kubernetes_validate")
    return cast(Callable[[Document, str, bool], str], module.validate)


def _kubernetes_validation_error() -> type[Exception]:
    module = importlib.import_module("kubernetes_validate")
    return cast(type[Exception], module.ValidationError)


def _kubernetes_versions() -> list[str]:
    utils = importlib.import_module("kubernetes_validate.utils")
    newest = cast(str, utils.latest_version())
    return ["1.29", ".".join(newest.split(".")[:2])]


@pytest.mark.parametrize("version", _kubernetes_versions())
@pytest.mark.parametrize("path", sorted(KUBERNETES.glob("*.yaml")), ids=lambda path: path.name)
def test_kubernetes_documents_validate_strictly(path: Path, version: str) -> None:
    validate = _kubernetes_validate()
    documents = load_yaml_documents(path)
    assert documents, f"{path.name} holds no document"
    for document in documents:
        # Raises ValidationError (unknown or mistyped field), or SchemaNotFoundError for a
        # kind/apiVersion that this Kubernetes version does not serve.
        validate(document, version, True)


def test_the_strict_validation_rejects_an_unknown_field() -> None:
    validate = _kubernetes_validate()
    deployment = json.loads(json.dumps(find("Deployment", "herald-api")))
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(_kubernetes_validation_error(), match="readinesProbe"):
        validate(deployment, "1.29", True)


def test_kubernetes_manifests_are_the_expected_set_and_namespace_agnostic() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in kubernetes_documents())
    assert kinds == [
        ("ConfigMap", "herald-config"),
        ("Deployment", "herald-api"),
        ("Deployment", "herald-worker"),
        ("HorizontalPodAutoscaler", "herald-worker"),
        ("Job", "herald-migrate"),
        ("PodDisruptionBudget", "herald-api"),
        ("PodDisruptionBudget", "herald-worker"),
        ("Secret", "herald-secrets"),
        ("Service", "herald-api"),
        ("Service", "herald-worker-metrics"),
    ]
    for doc in kubernetes_documents():
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]


def _workloads() -> list[tuple[str, Document]]:
    api, worker = find("Deployment", "herald-api"), find("Deployment", "herald-worker")
    job = find("Job", "herald-migrate")
    return [("api", api), ("worker", worker), ("migrate", job)]


@pytest.mark.parametrize("role", ["api", "worker", "migrate"])
def test_every_workload_runs_non_root_read_only_with_config_and_secret(role: str) -> None:
    workload = dict(_workloads())[role]
    pod = workload["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["args"] == [role]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The worker's heartbeat file (and any temporary file) needs a writable /tmp.
    mounts = {mount["mountPath"]: mount["name"] for mount in main["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[TMP]]
    assert {"requests", "limits"} <= set(main["resources"])
    assert "memory" in main["resources"]["limits"]
    sources = {
        next(iter(source)): next(iter(source.values()))["name"] for source in main["envFrom"]
    }
    assert sources == {"configMapRef": "herald-config", "secretRef": "herald-secrets"}
    images = {container(deployment)["image"] for _, deployment in _workloads()}
    assert len(images) == 1, f"workloads run different images: {images}"


def test_api_deployment_probes_and_service() -> None:
    api = find("Deployment", "herald-api")
    main = container(api)
    assert api["spec"]["replicas"] == 2
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports == {"http": 8000}
    labels = api["spec"]["template"]["metadata"]["labels"]
    service = find("Service", "herald-api")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ("http", 8000)
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_worker_deployment_liveness_metrics_and_shutdown_grace() -> None:
    worker = find("Deployment", "herald-worker")
    main = container(worker)
    for probe in ("livenessProbe", "startupProbe"):
        assert main[probe]["exec"]["command"][:2] == ["herald", "worker-health"], probe
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports == {"metrics": 9101}
    env = config_env()
    assert env["HERALD_WORKER_METRICS_PORT"] == "9101"
    assert env["HERALD_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert env["HERALD_WORKER_HEARTBEAT_FILE"].startswith(TMP + "/")
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9101"
    labels = worker["spec"]["template"]["metadata"]["labels"]
    metrics = find("Service", "herald-worker-metrics")
    assert metrics["spec"]["selector"].items() <= labels.items()
    assert metrics["spec"]["ports"][0]["port"] == 9101
    # SIGTERM hands unfinished work back after the grace; the kubelet must wait longer.
    grace = parse_duration(env["HERALD_WORKER_SHUTDOWN_GRACE"])
    termination = timedelta(
        seconds=worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    )
    assert termination >= grace + timedelta(seconds=15)


def test_autoscaler_and_disruption_budgets_select_the_deployments() -> None:
    hpa = find("HorizontalPodAutoscaler", "herald-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "herald-worker")
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]
    assert "herald_due_backlog" in (KUBERNETES / "worker.yaml").read_text()
    assert hpa["spec"]["minReplicas"] >= 2
    for name in ("herald-api", "herald-worker"):
        labels = find("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        pdb = find("PodDisruptionBudget", name)
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_configmap_holds_real_settings_and_secret_placeholders_fail_closed(
    settings_from: SettingsFrom,
) -> None:
    config = find("ConfigMap", "herald-config")["data"]
    secret = find("Secret", "herald-secrets")["stringData"]
    assert_real_settings(set(config) | set(secret), "deploy/kubernetes")
    assert not {"HERALD_SECRET_KEY", "HERALD_OPERATOR_KEY", "HERALD_DATABASE_URL"} & set(config)
    assert config["HERALD_ENV"] == "production"
    # The placeholders are too short for production: Herald refuses to start on them.
    with pytest.raises(ValidationError, match="HERALD_SECRET_KEY"):
        settings_from({**config, **secret})


def test_configmap_values_parse_with_real_secrets(
    settings_from: SettingsFrom,
) -> None:
    env = config_env() | {"HERALD_SECRET_KEY": "s" * 40, "HERALD_OPERATOR_KEY": "o" * 40}
    settings = settings_from(env)
    assert settings.api_host == "0.0.0.0"
    assert settings.worker_metrics_port == 9101


# --- Docker Compose ---------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _compose() -> Document:
    return load_yaml(COMPOSE)


def test_compose_services_order_and_health() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "otel-collector",
        "prometheus",
        "grafana",
    }
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"][1:3] == ["herald", "worker-health"]
    # Redis runs without persistence: PostgreSQL is the record.
    assert services["redis"]["command"] == ["redis-server", "--save", "", "--appendonly", "no"]
    # The worker's stop timeout covers HERALD_WORKER_SHUTDOWN_GRACE.
    environment = services["worker"]["environment"]
    grace = parse_duration(environment["HERALD_WORKER_SHUTDOWN_GRACE"])
    assert parse_duration(services["worker"]["stop_grace_period"]) > grace


def test_compose_environment_is_production_with_required_secrets() -> None:
    services = _compose()["services"]
    environments = [services[name]["environment"] for name in ("migrate", "api", "worker")]
    assert environments[0] == environments[1] == environments[2]
    environment: dict[str, str] = environments[0]
    assert_real_settings(set(environment), "docker-compose.yml")
    assert environment["HERALD_ENV"] == "production"
    assert environment["HERALD_API_HOST"] == "0.0.0.0"
    assert environment["HERALD_OTEL_ENABLED"] == "true"
    assert environment["HERALD_WORKER_METRICS_PORT"] == "9101"
    assert environment["HERALD_WORKER_METRICS_HOST"] == "0.0.0.0"
    # Herald's exporter speaks OTLP/HTTP: the collector's HTTP receiver, not gRPC's 4317.
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    required = re.compile(r"\$\{(?P<name>[A-Z_]+):\?[^}]+\}")
    for name in ("HERALD_SECRET_KEY", "HERALD_OPERATOR_KEY"):
        match = required.fullmatch(environment[name])
        assert match, f"{name} must be a required ${{{name}:?...}}"
        assert match["name"] == name
    assert required.search(environment["HERALD_DATABASE_URL"]), "database password is required"
    grafana = services["grafana"]["environment"]
    assert required.fullmatch(grafana["GF_SECURITY_ADMIN_PASSWORD"])


def test_compose_bind_mounts_exist() -> None:
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    build = _compose()["x-herald"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


# --- Prometheus, OpenTelemetry collector, Grafana -----------------------------------------------


def _scrape_targets() -> dict[str, set[str]]:
    """job -> host:port targets (static, or DNS service discovery names with their port)."""
    config = load_yaml(DEPLOY / "prometheus.yml")
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            found.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            found.update(f"{name}:{dns['port']}" for name in dns["names"])
    return targets


def test_prometheus_scrapes_the_api_and_every_worker() -> None:
    targets = set().union(*_scrape_targets().values())
    assert {"api:8000", "worker:9101"} <= targets
    collector = load_yaml(DEPLOY / "otel-collector.yaml")
    port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert f"otel-collector:{port}" in targets


def test_otel_collector_pipelines_use_defined_components() -> None:
    config = load_yaml(DEPLOY / "otel-collector.yaml")
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert {"debug", "prometheus"} <= set(config["exporters"])
    connectors = set(config.get("connectors", {}))
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for name, pipeline in pipelines.items():
        assert set(pipeline["receivers"]) <= set(config["receivers"]) | connectors, name
        assert set(pipeline.get("processors", [])) <= set(config["processors"]), name
        assert set(pipeline["exporters"]) <= set(config["exporters"]) | connectors, name
    assert set(config["service"].get("extensions", [])) <= set(config.get("extensions", {}))


_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset"}
_PROMQL_KEYWORDS |= {"bool", "and", "or", "unless", "inf", "nan"}
_SELECTOR = re.compile(r"(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\s*\{(?P<matchers>[^}]*)\}")
_MATCHER = re.compile(r'(?P<label>[A-Za-z_]\w*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')


def promql_metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions and keywords excluded)."""
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", expr)  # Grafana variables
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+|ms|[smhdwy])?", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in _PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def promql_matchers(expr: str) -> Iterator[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every label matcher on a named series."""
    for selector in _SELECTOR.finditer(expr):
        for matcher in _MATCHER.finditer(selector["matchers"]):
            yield selector["name"], matcher["label"], matcher["op"], matcher["value"]


def test_the_promql_reader_finds_metric_names() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{x="y"}[$__rate_interval])))'
        " / clamp_min(sum without (instance) (increase(b_total[5m] offset 1h)), 1e-9) > bool 2"
        ' and on (job) c unless max(d{e=~"f|g"})'
    )
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    assert list(promql_matchers(expr)) == [("a_bucket", "x", "=", "y"), ("d", "e", "=~", "f|g")]


def _dashboard_panels(panels: list[Document]) -> Iterator[Document]:
    for panel in panels:
        yield panel
        yield from _dashboard_panels(panel.get("panels", []))


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in _dashboard_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def test_dashboard_queries_use_only_the_metrics_contract() -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 10
    used: set[str] = set()
    for title, expr in queries:
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        unknown = names - set(SERIES)
        assert not unknown, f"{title}: {sorted(unknown)} are not in the metrics contract"
        used |= names
        for metric, label, op, value in promql_matchers(expr):
            allowed = SERIES[metric]
            assert label in allowed or label in TARGET_LABELS, f"{title}: {metric} has no {label}"
            values = allowed.get(label)
            if values is not None and op in ("=", "!="):
                assert value in values, f"{title}: {label}={value!r} is not a value of {metric}"
    covered = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert covered == CONTRACT_METRICS, f"not on the dashboard: {CONTRACT_METRICS - covered}"


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    panels = list(_dashboard_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    titles = " ".join(panel["title"].lower() for panel in panels)
    for wanted in ("outcome", "success", "attempt latency", "end-to-end", "backlog", "dlq"):
        assert wanted in titles, wanted
    for wanted in ("circuits", "ingest", "api latency"):
        assert wanted in titles, wanted
    expressions = " ".join(expr for _, expr in _dashboard_queries())
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, " in expressions


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource"
    assert variable["current"]["value"] == datasource["uid"]
    (provider,) = load_yaml(provisioning / "dashboards" / "herald.yml")["providers"]
    mounts = dict(volume.split(":")[:2] for volume in _compose()["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    instructions = dockerfile_instructions()
    arguments = dict(value.split("=", 1) for keyword, value in instructions if keyword == "ARG")
    assert arguments["PYTHON_IMAGE"] == "python:3.11-slim"
    stages = [value for keyword, value in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("${PYTHON_IMAGE} AS ") for stage in stages)
    final = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    last_stage = instructions[final:]
    users = [value for keyword, value in last_stage if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    (healthcheck,) = [value for keyword, value in last_stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    entrypoints = [json.loads(value) for keyword, value in last_stage if keyword == "ENTRYPOINT"]
    assert entrypoints == [["herald"]]
    assert [json.loads(value) for keyword, value in last_stage if keyword == "CMD"] == [["api"]]
    (expose,) = [value for keyword, value in last_stage if keyword == "EXPOSE"]
    assert set(expose.split()) == {"8000", "9101"}
    runs = " ".join(value for keyword, value in instructions[:final] if keyword == "RUN")
    assert "pip install ." in runs


def test_dockerfile_ships_migrations_beside_the_app_on_its_path() -> None:
    # app/db.py looks for alembic.ini and alembic/ beside the directory holding the `app`
    # package it was imported from; the installed wheel has neither, so the runtime stage
    # copies the source tree to a directory that PYTHONPATH puts first.
    instructions = dockerfile_instructions()
    final = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    environment = " ".join(value for keyword, value in instructions[final:] if keyword == "ENV")
    pythonpath = re.search(r"PYTHONPATH=(\S+)", environment)
    assert pythonpath, "PYTHONPATH must put the source tree ahead of site-packages"
    workdir, copied = None, set()
    for keyword, value in instructions[final:]:
        if keyword == "WORKDIR":
            workdir = value
        elif keyword == "COPY" and not value.startswith("--from") and workdir == pythonpath[1]:
            copied.update(value.split()[:-1])
    assert {"alembic.ini", "alembic", "app", "worker"} <= copied


def test_docker_ignore_file_keeps_every_copied_source() -> None:
    ignore = DEPLOY / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything is excluded first"
    included = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    for keyword, value in dockerfile_instructions():
        if keyword == "COPY" and not value.startswith("--from"):
            sources = value.split()[:-1]
            assert set(sources) <= included, f"COPY {value}: not in the build context"
            for source in sources:
                assert (ROOT / source).exists(), source
