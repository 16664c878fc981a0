"""The deployment files in ``deploy/`` checked without a container engine (none runs here): the
Dockerfile's stages and user, the compose file's services, dependencies and health checks, the
nginx config for SSE, and the Kubernetes manifests against a small JSON Schema of our own (the
fields these manifests use; unknown fields are refused, so a misspelt ``readinesProbe`` fails)
plus cross-checks with the app itself: probe paths are routes it serves, every ``GOVFLOW_*``
name is a ``Settings`` field, every Secret key referenced exists, the image runs as non-root.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS = {f"GOVFLOW_{f.name}" for f in fields(Settings)}
PRODUCTION_REQUIRED = {"GOVFLOW_ENV", "GOVFLOW_DATABASE_URL", "GOVFLOW_REDIS_URL", "GOVFLOW_PII_KEY",
                       "GOVFLOW_JWT_SECRET", "GOVFLOW_CERT_KEY_DIR"}
ENTRYPOINT_COMMANDS = {"serve", "worker", "migrate"}
APP_UID = 10001


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def routes() -> set[str]:
    from mobile_api.app import create_app

    app = create_app(Settings())
    return {route.uri for route in app.router.routes}


# ----------------------------------------------------------------------------- Dockerfile

def _dockerfile() -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    froms = [i for i in instructions if i.startswith("FROM ")]
    stages = [re.fullmatch(r"FROM (\S+) AS (\w+)", i).group(2) for i in froms]  # type: ignore[union-attr]
    assert stages == ["designer", "build", "runtime"]  # Node builds the designer bundle; tests/test_deploy_image.py
    runtime = instructions[instructions.index(froms[-1]):]
    assert any(i.startswith("COPY --from=build /opt/venv") for i in runtime)
    assert not any("build-essential" in i for i in runtime), "compilers stay in the build stage"
    [user] = [i for i in runtime if i.startswith("USER ")]
    assert user == f"USER {APP_UID}:{APP_UID}" and runtime.index(user) > max(
        n for n, i in enumerate(runtime) if i.startswith(("RUN ", "COPY ")))  # nothing runs as root after
    default_python = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)", "\n".join(instructions))
    assert default_python and default_python.group(1) == "3.11"  # requires-python
    assert 'ENTRYPOINT ["govflow-entrypoint"]' in runtime and 'CMD ["serve"]' in runtime
    assert "EXPOSE 8000" in runtime and any("GOVFLOW_PORT=8000" in i for i in runtime)
    assert any(i.startswith("HEALTHCHECK") and "/health" in i for i in runtime)


def test_dockerfile_copies_only_what_exists_and_sets_only_known_settings() -> None:
    instructions = _dockerfile()
    for copy in (i for i in instructions if i.startswith("COPY ") and "--from=" not in i):
        sources = [part for part in copy.split()[1:-1] if not part.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), copy
    env_names = set(re.findall(r"\b(GOVFLOW_[A-Z_]+)=", "\n".join(instructions)))
    assert env_names and env_names <= SETTINGS, env_names - SETTINGS
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[[n for n, line in enumerate(ignore) if not line.startswith("#")][0]] == "**"  # allow-list
    for needed in ("engine/", "mobile_api/", "processes/", "web/", "deploy/entrypoint.sh", "pyproject.toml"):
        assert f"!{needed}" in ignore


# ----------------------------------------------------------------------------- compose

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    [doc] = _load_all(DEPLOY / "compose.yaml")
    return doc


def test_compose_runs_two_apis_a_worker_postgres_redis_and_nginx(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"api1", "api2", "worker", "postgres", "redis", "nginx"}
    for name in ("api1", "api2", "worker"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["command"][0] in ENTRYPOINT_COMMANDS
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                         "redis": {"condition": "service_healthy"}}
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "user" not in service or service["user"] not in ("root", "0")  # the image's USER 10001
    assert [services[n]["command"] for n in ("api1", "api2", "worker")] == [["serve"], ["serve"], ["worker"]]
    assert services["nginx"]["depends_on"] == {"api1": {"condition": "service_healthy"},
                                               "api2": {"condition": "service_healthy"}}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    for name in ("api1", "api2"):
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])
    # both APIs see the same scanned materials
    assert "uploads:/var/lib/govflow/uploads" in services["api1"]["volumes"] == services["api2"]["volumes"]


def test_compose_environment_is_production_with_known_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["api1"]["environment"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    assert PRODUCTION_REQUIRED <= set(env)
    assert env["GOVFLOW_ENV"] == "production" and env["GOVFLOW_PROXIES_COUNT"] == "1"
    assert env["GOVFLOW_DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["GOVFLOW_DATABASE_URL"]
    assert env["GOVFLOW_REDIS_URL"].startswith("redis://redis:6379/")
    for secret in ("GOVFLOW_PII_KEY", "GOVFLOW_JWT_SECRET"):  # never a default: compose refuses to start
        assert re.fullmatch(r"\$\{%s:\?[^}]+\}" % secret, env[secret]), env[secret]
    assert compose["services"]["worker"]["environment"] == env
    example = {line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "compose.yaml").read_text()))
    assert used <= example, used - example


# ----------------------------------------------------------------------------- nginx

def _nginx_blocks(text: str) -> dict[str, str]:
    """The body of each ``upstream``/``location``/``server`` block, keyed by its header."""
    text = re.sub(r"#[^\n]*", "", text)
    blocks: dict[str, str] = {}
    stack: list[tuple[str, int]] = []
    header_start = 0
    for n, char in enumerate(text):
        if char == "{":
            header = text[header_start:n].strip().split(";")[-1].strip()
            stack.append((header, n + 1))
            header_start = n + 1
        elif char == "}":
            header, start = stack.pop()
            blocks[header] = text[start:n]
            header_start = n + 1
        elif char == ";":
            header_start = n + 1
    assert not stack, "unbalanced braces"
    return blocks


def _directives(body: str) -> list[list[str]]:
    inner = re.sub(r"\{[^{}]*\}", ";", body)
    return [d.split() for d in inner.split(";") if d.strip()]


def test_nginx_balances_both_apis_and_streams_sse_unbuffered(compose: dict[str, Any]) -> None:
    blocks = _nginx_blocks((DEPLOY / "nginx" / "govflow.conf").read_text(encoding="utf-8"))
    upstream = _directives(blocks["upstream govflow_api"])
    servers = [d[1] for d in upstream if d[0] == "server"]
    port = compose["services"]["api1"]["environment"].get("GOVFLOW_PORT", "8000")
    assert servers == [f"api1:{port}", f"api2:{port}"]
    assert ["least_conn"] in upstream  # long-lived streams: balance by open connections
    server = _directives(blocks["server"])
    assert ["listen", "8080"] in server and "8080:8080" in compose["services"]["nginx"]["ports"]
    assert ["proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"] in server
    [sse_header] = [h for h in blocks if h.startswith("location ~") and "events" in h]
    pattern = sse_header.split(None, 2)[2]
    assert re.match(pattern, "/api/v1/applications/42/events") and not re.match(pattern, "/api/v1/applications")
    sse = _directives(blocks[sse_header])
    assert ["proxy_buffering", "off"] in sse and ["proxy_pass", "http://govflow_api"] in sse
    read_timeout = next(d[1] for d in sse if d[0] == "proxy_read_timeout")
    assert int(read_timeout.rstrip("s")) > 3600  # longer than the API's own stream limit (SSE_MAX_S)
    assert ["proxy_pass", "http://govflow_api"] in _directives(blocks["location /"])
    assert "location = /nginx-health" in blocks
    nginx_check = " ".join(compose["services"]["nginx"]["healthcheck"]["test"])
    assert "/nginx-health" in nginx_check and ":8080" in nginx_check


# ----------------------------------------------------------------------------- Kubernetes

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_LABELS = {"type": "object", "additionalProperties": _STR}
_META = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}, "labels": _LABELS,
    "annotations": _LABELS}}
_PROBE = {"type": "object", "additionalProperties": False, "required": ["httpGet"], "properties": {
    "httpGet": {"type": "object", "additionalProperties": False, "required": ["path", "port"],
                "properties": {"path": _STR, "port": {"type": ["string", "integer"]}}},
    "periodSeconds": _INT, "timeoutSeconds": _INT, "failureThreshold": _INT, "initialDelaySeconds": _INT}}
_SECRET_REF = {"type": "object", "additionalProperties": False, "required": ["name", "key"],
               "properties": {"name": _STR, "key": _STR, "optional": _BOOL}}
_ENV = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": _STR, "value": _STR,
    "valueFrom": {"type": "object", "additionalProperties": False, "properties": {
        "secretKeyRef": _SECRET_REF, "configMapKeyRef": _SECRET_REF}}}}
_CONTAINER = {"type": "object", "additionalProperties": False, "required": ["name", "image"], "properties": {
    "name": _STR, "image": _STR, "args": {"type": "array", "items": _STR},
    "command": {"type": "array", "items": _STR},
    "ports": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                         "required": ["containerPort"],
                                         "properties": {"name": _STR, "containerPort": _INT}}},
    "envFrom": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
        "configMapRef": {"type": "object", "required": ["name"], "properties": {"name": _STR}},
        "secretRef": {"type": "object", "required": ["name"], "properties": {"name": _STR}}}}},
    "env": {"type": "array", "items": _ENV},
    "readinessProbe": _PROBE, "livenessProbe": _PROBE, "startupProbe": _PROBE,
    "lifecycle": {"type": "object"},
    "resources": {"type": "object", "additionalProperties": False, "properties": {
        "requests": _LABELS, "limits": _LABELS}},
    "securityContext": {"type": "object", "additionalProperties": False, "properties": {
        "allowPrivilegeEscalation": _BOOL, "readOnlyRootFilesystem": _BOOL, "runAsNonRoot": _BOOL,
        "runAsUser": _INT, "capabilities": {"type": "object"}}},
    "volumeMounts": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                "required": ["name", "mountPath"], "properties": {
                                                    "name": _STR, "mountPath": _STR, "readOnly": _BOOL}}}}}
_POD_SPEC = {"type": "object", "additionalProperties": False, "required": ["containers"], "properties": {
    "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
    "initContainers": {"type": "array", "items": _CONTAINER},
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
    "automountServiceAccountToken": _BOOL, "terminationGracePeriodSeconds": _INT,
    "securityContext": {"type": "object", "additionalProperties": False, "properties": {
        "runAsNonRoot": _BOOL, "runAsUser": _INT, "runAsGroup": _INT, "fsGroup": _INT,
        "seccompProfile": {"type": "object", "required": ["type"]}}},
    "volumes": {"type": "array", "items": {"type": "object", "required": ["name"], "minProperties": 2}}}}
_TEMPLATE = {"type": "object", "additionalProperties": False, "required": ["metadata", "spec"], "properties": {
    "metadata": {"type": "object", "additionalProperties": False, "properties": {
        "labels": _LABELS, "annotations": _LABELS}}, "spec": _POD_SPEC}}
_SELECTOR = {"type": "object", "additionalProperties": False, "required": ["matchLabels"],
             "properties": {"matchLabels": _LABELS}}


def _kind(api_version: str, kind: str, spec: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"apiVersion": {"const": api_version}, "kind": {"const": kind},
                                  "metadata": _META, **extra}
    required = ["apiVersion", "kind", "metadata"]
    if spec is not None:
        properties["spec"], required = spec, [*required, "spec"]
    return {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"type": "object", "additionalProperties": False, "required": required, "properties": properties}}


K8S_SCHEMA = {"type": "object", "required": ["apiVersion", "kind", "metadata"], "properties": {"kind": {"enum": [
    "Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service", "Job",
    "HorizontalPodAutoscaler", "Ingress"]}}, "allOf": [
    _kind("v1", "Namespace", None),
    _kind("v1", "ConfigMap", None, data=_LABELS),
    _kind("v1", "Secret", None, type=_STR, stringData=_LABELS),
    _kind("v1", "PersistentVolumeClaim", {"type": "object", "required": ["accessModes", "resources"]}),
    _kind("apps/v1", "Deployment", {"type": "object", "additionalProperties": False,
                                    "required": ["selector", "template"], "properties": {
        "replicas": _INT, "revisionHistoryLimit": _INT, "selector": _SELECTOR, "template": _TEMPLATE,
        "strategy": {"type": "object"}}}),
    _kind("batch/v1", "Job", {"type": "object", "additionalProperties": False, "required": ["template"],
                              "properties": {"backoffLimit": _INT, "activeDeadlineSeconds": _INT,
                                             "ttlSecondsAfterFinished": _INT, "template": _TEMPLATE}}),
    _kind("v1", "Service", {"type": "object", "additionalProperties": False, "required": ["selector", "ports"],
                            "properties": {"type": _STR, "selector": _LABELS, "ports": {"type": "array", "items": {
                                "type": "object", "additionalProperties": False, "required": ["port"],
                                "properties": {"name": _STR, "port": _INT,
                                               "targetPort": {"type": ["string", "integer"]}}}}}}),
    _kind("autoscaling/v2", "HorizontalPodAutoscaler", {
        "type": "object", "additionalProperties": False, "required": ["scaleTargetRef", "maxReplicas"],
        "properties": {"scaleTargetRef": {"type": "object", "required": ["apiVersion", "kind", "name"]},
                       "minReplicas": {"type": "integer", "minimum": 1}, "maxReplicas": _INT,
                       "metrics": {"type": "array"}, "behavior": {"type": "object"}}}),
    _kind("networking.k8s.io/v1", "Ingress", {"type": "object", "required": ["rules"]}),
]}


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in _load_all(K8S / name):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, key
            found[key] = doc
    return found


def test_every_manifest_matches_the_schema_and_is_in_the_kustomization(manifests: dict) -> None:
    validator = Draft202012Validator(K8S_SCHEMA)
    files = sorted(p.name for p in K8S.glob("*.yaml"))
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted([*listed, "kustomization.yaml", "secret.example.yaml"]) == files  # secrets stay out
    for path in K8S.glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        for doc in _load_all(path):
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            assert not errors, (path.name, [f"{list(e.path)}: {e.message}" for e in errors])
    assert set(manifests) >= {("Deployment", "govflow-api"), ("Deployment", "govflow-worker"),
                              ("Service", "govflow-api"), ("HorizontalPodAutoscaler", "govflow-api"),
                              ("Job", "govflow-migrate"), ("ConfigMap", "govflow-config"),
                              ("PersistentVolumeClaim", "govflow-uploads"), ("Ingress", "govflow")}


def test_the_schema_refuses_a_misspelt_probe(manifests: dict) -> None:
    import copy

    broken = copy.deepcopy(manifests[("Deployment", "govflow-api")])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    assert list(Draft202012Validator(K8S_SCHEMA).iter_errors(broken))


def _pods(manifests: dict) -> dict[str, dict[str, Any]]:
    return {name: doc["spec"]["template"]["spec"] for (kind, name), doc in manifests.items()
            if kind in ("Deployment", "Job")}


def test_api_probes_hit_the_apps_ready_and_health_routes(manifests: dict, routes: set[str]) -> None:
    api = manifests[("Deployment", "govflow-api")]
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
        assert container[probe]["httpGet"]["port"] in ports
    config = manifests[("ConfigMap", "govflow-config")]["data"]
    assert ports["http"] == int(config["GOVFLOW_PORT"]) and config["GOVFLOW_HOST"] == "0.0.0.0"
    service = manifests[("Service", "govflow-api")]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert api["spec"]["template"]["metadata"]["labels"] | service["spec"]["selector"] == \
        api["spec"]["template"]["metadata"]["labels"]
    ingress = manifests[("Ingress", "govflow")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "govflow-api", "port": {"name": "http"}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    for kind in ("Deployment",):
        for name in ("govflow-api", "govflow-worker"):
            hpa = manifests[("HorizontalPodAutoscaler", name)]["spec"]["scaleTargetRef"]
            assert hpa == {"apiVersion": "apps/v1", "kind": kind, "name": name}


def test_pods_run_the_entrypoint_as_non_root_with_known_settings(manifests: dict) -> None:
    config = manifests[("ConfigMap", "govflow-config")]["data"]
    assert set(config) <= SETTINGS, set(config) - SETTINGS
    assert config["GOVFLOW_ENV"] == "production" and config["GOVFLOW_WORKERS"] == "1"
    secret_docs = _load_all(K8S / "secret.example.yaml")
    secret_keys = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in secret_docs}
    pods = _pods(manifests)
    assert {name: pod["containers"][0]["args"] for name, pod in pods.items()} == {
        "govflow-api": ["serve"], "govflow-worker": ["worker"], "govflow-migrate": ["migrate"]}
    for name, pod in pods.items():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == APP_UID != 0
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert container["image"] == "govflow"  # kustomization's images: sets registry and tag
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert "memory" in container["resources"]["limits"]
            assert {"configMapRef": {"name": "govflow-config"}} in container["envFrom"]
            env = {e["name"]: e for e in container["env"]}
            assert {n for n in env if n.startswith("GOVFLOW_")} <= SETTINGS
            assert set(env) - SETTINGS <= {"MIGRATE_ON_START"}
            assert PRODUCTION_REQUIRED <= set(env) | set(config)
            for entry in env.values():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secret_keys[ref["name"]], ref
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes
            if name != "govflow-migrate":
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert volumes[mounts[config["GOVFLOW_CERT_KEY_DIR"]]]["secret"]["secretName"] in secret_keys
                assert env["MIGRATE_ON_START"]["value"] == "0"  # the Job migrates
    api_mounts = {m["mountPath"]: m["name"] for m in pods["govflow-api"]["containers"][0]["volumeMounts"]}
    uploads = {v["name"]: v for v in pods["govflow-api"]["volumes"]}[api_mounts[config["GOVFLOW_UPLOAD_DIR"]]]
    assert uploads["persistentVolumeClaim"]["claimName"] == "govflow-uploads"
    assert manifests[("PersistentVolumeClaim", "govflow-uploads")]["spec"]["accessModes"] == ["ReadWriteMany"]


def _ingress_routes(request_path: str, paths: list[tuple[str, str]]) -> bool:
    """Whether an Ingress with ``paths`` (path, pathType) sends ``request_path`` to a backend, as
    Kubernetes defines the match: Exact is the whole string; Prefix compares ``/``-separated
    elements (``/api`` matches ``/api`` and ``/api/v1``, never ``/apix``)."""
    elements = [e for e in request_path.split("/") if e]
    for path, kind in paths:
        if kind == "Exact" and request_path == path:
            return True
        if kind == "Prefix":
            prefix = [e for e in path.split("/") if e]
            if elements[:len(prefix)] == prefix:
                return True
    return False


def test_ingress_keeps_metrics_internal_and_routes_every_public_route(manifests: dict, routes: set[str]) -> None:
    ingress = manifests[("Ingress", "govflow")]
    paths = [(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {kind for _, kind in paths} <= {"Exact", "Prefix"}  # no controller-specific (regex) matching
    for hidden in ("/metrics", "/metrics/", "/metrics?x=1", "//metrics", "/"):
        assert not _ingress_routes(hidden.split("?")[0], paths), hidden
    public = {"/" + re.sub(r"<[^>]+>", "x", uri).strip("/") for uri in routes} - {"/metrics"}
    assert {"/m", "/console", "/designer", "/health", "/ready", "/shared/static/x"} <= public
    assert [uri for uri in sorted(public) if not _ingress_routes(uri, paths)] == []
    assert _ingress_routes("/api/v1/services", paths) and not _ingress_routes("/apix", paths)
    # nginx (compose) keeps it internal the same way
    nginx = (DEPLOY / "nginx" / "govflow.conf").read_text(encoding="utf-8")
    assert re.search(r"location = /metrics \{\s*return 404;", nginx)
