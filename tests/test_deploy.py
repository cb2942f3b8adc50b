"""The files under deploy/ and docs/deploy.md, checked statically (there is no container
engine here) against each other and against the gateway itself: the example settings build
an app, every runtime runs the README's command, probes, ports, timeouts and selectors agree."""
from __future__ import annotations

import asyncio
import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway import settings as settings_mod
from gateway.app import create_app
from gateway.cli import parser as cli_parser
from gateway.keys import GATEWAY
from gateway_cache_redis import RedisSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
EXAMPLE = DEPLOY / "gateway.example.toml"
DOCKERFILE = DEPLOY / "Dockerfile"
CONFIG_PATH = "/etc/gateway/gateway.toml"


# --- readers ---------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_yaml_docs(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation line"
    return out


def instructions(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def docker_cmd() -> list[str]:
    (cmd,) = instructions("CMD")
    return json.loads(cmd)


def healthcheck_argv() -> list[str]:
    (hc,) = instructions("HEALTHCHECK")
    options, sep, cmd = hc.partition("CMD ")
    assert sep, hc
    return json.loads(cmd)


def compose() -> dict[str, Any]:
    (doc,) = load_yaml_docs(DEPLOY / "compose.yaml")
    return doc


def gateway_services() -> dict[str, dict[str, Any]]:
    """Compose services built from deploy/Dockerfile."""
    out = {}
    for name, svc in compose()["services"].items():
        build = svc.get("build")
        if isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile":
            out[name] = svc
    return out


def compose_env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object under deploy/kubernetes/ but the kustomization, by (kind, name)."""
    out = {}
    for path in sorted(K8S.glob("*.y*ml")):
        if path.name.startswith("kustomization."):
            continue
        for doc in load_yaml_docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


def the(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for (k, n), d in manifests().items() if k == kind and (name is None or n == name)]
    assert found, f"no {kind} {name or ''}"
    return found[0]


def gateway_deployment() -> dict[str, Any]:
    return the("Deployment", "gateway")


def gateway_container() -> dict[str, Any]:
    (container,) = [c for c in gateway_deployment()["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway"]
    return container


def k8s_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def example_raw() -> dict[str, Any]:
    return settings_mod.read_file(EXAMPLE)


def example_settings() -> settings_mod.Settings:
    return settings_mod.build(example_raw())


def seconds(value: str | int) -> float:
    """nginx / compose durations: 45, "45s", "10m", "1m30s"."""
    if isinstance(value, int | float):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)?", value.strip())
    assert parts and "".join(n + (u or "") for n, u in parts) == value.strip(), value
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}
    return sum(float(n) * scale[u] for n, u in parts)


def nginx_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, value
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def nginx_conf() -> str:
    return "\n".join(line.split("#", 1)[0] for line in (DEPLOY / "nginx.conf").read_text(encoding="utf-8").splitlines())


def nginx_directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, args in re.findall(r"(?m)^\s*([a-z_]+)\s+([^;{}]*);", text):
        out.setdefault(name, []).append(args.strip())
    return out


# --- every file parses ---------------------------------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {"compose.yaml", "kubernetes/kustomization.yaml"}
    for path in files:
        docs = load_yaml_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: a document that is not a mapping"


def test_example_settings_build_an_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-deploy-test")
    app = create_app(example_raw())
    state = app[GATEWAY]
    assert "openai-prod" in state.virtual_keys
    assert state.virtual_keys["openai-prod"].provider == "openai"
    assert "pc-images" in state.saved_configs
    models = [(t.override_params or {}).get("model") for t in state.saved_configs["pc-images"].targets]
    assert models == ["gpt-image-2", "gpt-image-1-mini"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_healthcheck_and_probes_answer_on_the_example_app(aiohttp_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The image's HEALTHCHECK command, run as written (address aside), passes against a live
    gateway built from the example settings and fails when nothing listens."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-deploy-test")
    server = await aiohttp_server(create_app(example_raw()))
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(server.make_url(path)) as resp:
                assert resp.status == 200, path

    argv = healthcheck_argv()
    assert argv[0] == "python" and argv[1] == "-c"
    assert "http://127.0.0.1:8787/healthz" in argv[2]

    def run(port: int) -> int:
        code = argv[2].replace("127.0.0.1:8787", f"127.0.0.1:{port}")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode

    assert await asyncio.to_thread(run, server.port) == 0
    assert await asyncio.to_thread(run, free_port()) != 0


# --- one command everywhere ------------------------------------------------------------------


def test_every_runtime_runs_the_readme_command() -> None:
    assert "gateway serve" in (ROOT / "README.md").read_text(encoding="utf-8")
    cmd = docker_cmd()
    assert cmd == ["gateway", "serve", "--host", "0.0.0.0", "--port", "8787"]
    args = cli_parser().parse_args(cmd[1:])
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8787)

    for name, svc in gateway_services().items():
        if "command" in svc:
            command = svc["command"]
            assert (shlex.split(command) if isinstance(command, str) else command) == cmd, name
    container = gateway_container()
    assert [*container["command"], *container.get("args", [])] == cmd


def test_docs_run_the_same_command_and_name_existing_files() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert " ".join(docker_cmd()) in doc
    for ref in set(re.findall(r"deploy/[\w./-]*[\w/]", doc)):
        assert (ROOT / ref).exists(), f"docs/deploy.md names {ref}, which does not exist"


# --- the image ---------------------------------------------------------------------------------


def test_dockerfile_builds_every_distribution_into_a_slim_non_root_image() -> None:
    froms = instructions("FROM")
    assert len(froms) >= 2, "multi-stage build"
    assert froms[-1].split()[0] == "python:3.11-slim"
    runs = " ".join(instructions("RUN"))
    assert re.search(r"pip wheel\b[^&]*-c constraints\.txt[^&]* \.(?: |$)[^&]*plugins/\*", runs), runs
    assert "--no-index" in runs

    (user,) = instructions("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot checks it)"
    assert instructions("EXPOSE") == ["8787"]
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
    assert "/healthz" in healthcheck_argv()[2]
    words = [w for w, _ in dockerfile()]
    assert words.index("USER") < words.index("CMD")


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    kept = {line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")}
    for copy in instructions("COPY"):
        if "--from=" in copy:
            continue
        parts = [p for p in copy.split() if not p.startswith("--")]
        for src in parts[:-1]:
            src = src.rstrip("/")
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
            assert src in kept, f"COPY {src}: left out of the build context by Dockerfile.dockerignore"


# --- compose and nginx -----------------------------------------------------------------------


def test_compose_runs_two_gateways_redis_and_nginx() -> None:
    services = compose()["services"]
    gateways = gateway_services()
    replicas = sum(int(svc.get("deploy", {}).get("replicas", 1)) for svc in gateways.values())
    assert replicas == 2
    for name, svc in gateways.items():
        assert svc["build"]["context"] == "..", name
        assert len({svc.get("image") for svc in gateways.values()}) == 1, "one image for every replica"
        env = compose_env(svc)
        assert env["GATEWAY_CONFIG"] == CONFIG_PATH
        assert f"./gateway.example.toml:{CONFIG_PATH}:ro" in svc["volumes"]
        assert env["GATEWAY__CACHE__BACKEND"] == "redis"
        assert env["GATEWAY__REDIS__URL"] == "redis://redis:6379/0"
        assert env["GATEWAY__IMAGES__STORE"] == "cache"
        # Image URLs point where clients reach nginx (its published port), not at a Host a caller sends.
        assert env["GATEWAY__IMAGES__PUBLIC_URL"] == "${GATEWAY_PUBLIC_URL:-http://127.0.0.1:8787}"
        assert "8787:80" in services["lb"]["ports"]
        assert "OPENAI_API_KEY" in env
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert seconds(svc["stop_grace_period"]) > example_settings().server.shutdown_timeout

    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])

    (lb,) = [svc for svc in services.values() if str(svc.get("image", "")).startswith("nginx:")]
    assert lb["image"] == "nginx:alpine"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    for name in gateways:
        assert lb["depends_on"][name]["condition"] == "service_healthy"
    (listen,) = nginx_directives(nginx_conf())["listen"]
    assert any(str(p).endswith(f":{listen}") for p in lb["ports"])


def test_nginx_spreads_over_the_gateways_and_waits_for_long_generations() -> None:
    text = nginx_conf()
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", text))
    assert len(upstreams) == 1
    ((name, body),) = upstreams.items()
    servers = [args.split()[0] for args in nginx_directives(body)["server"]]
    assert {s.rsplit(":", 1)[0] for s in servers} == set(gateway_services())
    assert {s.rsplit(":", 1)[1] for s in servers} == {"8787"}

    d = nginx_directives(text)
    assert d["proxy_pass"] == [f"http://{name}"]
    read_timeout = seconds(d["proxy_read_timeout"][0])
    assert read_timeout >= 600
    assert read_timeout > example_settings().upstream.read_timeout, "the gateway must time out before nginx"
    assert seconds(d["proxy_send_timeout"][0]) >= 600
    assert nginx_bytes(d["client_max_body_size"][0]) >= example_settings().server.max_body_bytes
    assert d["proxy_request_buffering"] == ["off"]
    assert d["proxy_buffering"] == ["off"]


# --- Kubernetes ---------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    (kust,) = load_yaml_docs(K8S / "kustomization.yaml")
    assert kust["kind"] == "Kustomization"
    files = {p.name for p in K8S.glob("*.y*ml") if not p.name.startswith("kustomization.")}
    assert sorted(kust["resources"]) == sorted(files)
    assert len(kust["resources"]) == len(set(kust["resources"]))
    image = gateway_container()["image"]
    assert [i["name"] for i in kust.get("images", [])] in ([], [image.split(":")[0]])


def test_manifests_are_namespace_less() -> None:
    kinds = {k for k, _ in manifests()}
    assert kinds >= {"Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for (kind, name), doc in manifests().items():
        assert "namespace" not in doc["metadata"], f"{kind}/{name}"


def test_deployment_probes_lifecycle_and_limits() -> None:
    dep = gateway_deployment()
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    c = gateway_container()
    assert [p["containerPort"] for p in c["ports"]] == [8787]

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert container_port(c, get["port"]) == 8787

    pre_stop = c["lifecycle"]["preStop"]
    sleep = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else int(pre_stop["exec"]["command"][-1])
    assert 0 < sleep <= 15
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > 30
    assert grace > example_settings().server.shutdown_timeout + sleep

    res = c["resources"]
    assert set(res["requests"]) >= {"cpu", "memory"} and set(res["limits"]) >= {"cpu", "memory"}

    sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    (user,) = instructions("USER")
    assert str(sc.get("runAsUser", user.split(":")[0])) == user.split(":")[0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_deployment_reads_the_configmap_and_the_secret() -> None:
    c = gateway_container()
    pod = gateway_deployment()["spec"]["template"]["spec"]
    env = k8s_env(c)
    assert env["GATEWAY_CONFIG"] == CONFIG_PATH

    config_dir, _, config_file = CONFIG_PATH.rpartition("/")
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == config_dir]
    source = volumes[mount["name"]]["configMap"]
    items = {i["path"]: i["key"] for i in source.get("items", [])} or {config_file: config_file}
    cm = the("ConfigMap", source["name"])
    assert items[config_file] in cm["data"]

    ref = env["OPENAI_API_KEY"]["secretKeyRef"]
    secret = the("Secret", ref["name"])
    assert secret["stringData"][ref["key"]] == "replace-me"


def test_configmap_holds_the_example_settings() -> None:
    (cm,) = [d for (k, _), d in manifests().items() if k == "ConfigMap"]
    assert cm["data"]["gateway.toml"] == EXAMPLE.read_text(encoding="utf-8")


def test_service_hpa_and_pdb_select_the_gateway_pods() -> None:
    labels = gateway_deployment()["spec"]["template"]["metadata"]["labels"]
    svc = the("Service", "gateway")
    assert svc["spec"]["type"] == "ClusterIP"
    assert selects(svc["spec"]["selector"], labels)
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 80
    assert container_port(gateway_container(), port["targetPort"]) == 8787

    hpa = the("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", gateway_deployment()["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}

    pdb = the("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)

    # Nothing else (Redis) carries the gateway's labels.
    for (kind, name), doc in manifests().items():
        if kind == "Deployment" and name != gateway_deployment()["metadata"]["name"]:
            assert not selects(svc["spec"]["selector"], doc["spec"]["template"]["metadata"]["labels"]), name


def test_redis_in_kubernetes() -> None:
    services = {n: d for (k, n), d in manifests().items() if k == "Service"}
    deployments = {n: d for (k, n), d in manifests().items() if k == "Deployment"}
    url = k8s_env(gateway_container())["GATEWAY__REDIS__URL"]
    m = re.fullmatch(r"redis://([\w.-]+):(\d+)/\d+", url)
    assert m, url
    svc = services[m.group(1)]
    (port,) = svc["spec"]["ports"]
    assert port["port"] == int(m.group(2))
    (redis,) = [d for d in deployments.values() if selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "redis:7-alpine"
    assert container_port(container, port["targetPort"]) == 6379


# --- the environment every runtime sets ------------------------------------------------------


def test_container_environment_names_real_settings() -> None:
    """Each GATEWAY__ variable of the compose services and the Deployment lands on a settings
    key that validates together with the example file, and both use the Redis cache."""
    envs = {f"compose {name}": compose_env(svc) for name, svc in gateway_services().items()}
    envs["deployment"] = {k: v for k, v in k8s_env(gateway_container()).items() if isinstance(v, str)}
    for where, env in envs.items():
        overrides = {k: v for k, v in env.items() if k.startswith(settings_mod.ENV_PREFIX)}
        raw = settings_mod.apply_env(example_raw(), overrides)
        settings_mod.build(raw, {"redis": RedisSettings})  # the core sections and the Redis plugin's
        assert set(raw.get("cache", {})) == {"backend"}, where
        assert raw["cache"]["backend"] == "redis", where
        assert set(raw.get("redis", {})) == {"url"}, where
