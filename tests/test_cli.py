"""The ``gateway`` command as a real process: plugins, config check/schema, start-up failures."""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

import gateway
from gateway.plugins import DEFAULT_PLUGINS

CONSOLE_SCRIPT = Path(sys.executable).with_name("gateway")
OPENAI_VERSION = importlib.metadata.version("gateway-openai")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, script: bool = False, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` (the console script, or ``python -m gateway.cli``) in ``cwd``."""
    cmd = [str(CONSOLE_SCRIPT)] if script else [sys.executable, "-m", "gateway.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout)


def run_all(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in a session of its own: on a timeout its workers are killed with it
    (``subprocess.run`` would kill the parent only, leaving them serving)."""
    cmd = [sys.executable, "-m", "gateway.cli", *args]
    with subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit code 2, one ``gateway: ...`` line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("gateway: "), line
    for needle in needles:
        assert needle in line, line
    return line


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- gateway plugins


def test_plugins_lists_the_openai_plugin_with_distribution_version_and_hooks(tmp_path: Path) -> None:
    if not CONSOLE_SCRIPT.exists():  # pragma: no cover
        pytest.skip("the gateway console script is not installed next to this interpreter")
    proc = run("plugins", cwd=tmp_path, script=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    i = lines.index(f"openai  gateway-openai {OPENAI_VERSION}")
    assert lines[i + 1].strip() == "providers: openai"
    assert lines[i + 2].strip() == "hooks: gateway_register_providers"
    # What a config can name: strategy modes, cache backends from their plugins.
    assert "    strategy modes: fallback" in lines and "    cache backends: redis" in lines
    assert "gateway.defaults." not in proc.stdout
    assert proc.stderr == ""
    # Then every name a config or the settings can use, the built-in plugins' too.
    names = dict(line.strip().split(": ", 1) for line in lines[lines.index("names a config or the settings can use:") + 1:])
    assert {"openai", "black-forest-labs", "vertex-ai"} <= set(names["providers"].split(", "))
    assert names["strategy modes"] == "conditional, fallback, loadbalance, single"
    assert names["cache backends"] == "memory, redis"
    assert names["image stores"] == "cache, local"
    assert names["log stores"] == "postgres, sqlite"


def test_plugins_all_includes_the_builtin_defaults(tmp_path: Path) -> None:
    proc = run("plugins", "--all", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in DEFAULT_PLUGINS:
        assert f"{name}  gateway {gateway.__version__}" in proc.stdout
    assert f"openai  gateway-openai {OPENAI_VERSION}" in proc.stdout


def test_plugins_json(tmp_path: Path) -> None:
    rows = msgspec.json.decode(run("plugins", "--json", cwd=tmp_path).stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["openai"] == {
        "name": "openai", "distribution": "gateway-openai", "version": OPENAI_VERSION,
        "provides": {"providers": ["openai"]}, "hooks": ["gateway_register_providers"],
    }
    assert not [n for n in by_name if n.startswith("gateway.defaults.")]

    all_rows = msgspec.json.decode(run("plugins", "--all", "--json", cwd=tmp_path).stdout)
    all_by_name = {r["name"]: r for r in all_rows}
    assert set(DEFAULT_PLUGINS) <= set(all_by_name)
    routing = all_by_name["gateway.defaults.routing"]
    assert routing["distribution"] == "gateway" and routing["version"] == gateway.__version__
    assert "gateway_route" in routing["hooks"]
    assert "gateway_authenticate" in all_by_name["gateway.defaults.auth_keys"]["hooks"]
    assert all_by_name["gateway.defaults.images"]["provides"] == {"image stores": ["cache", "local"]}
    assert all_by_name["cache-redis"]["provides"] == {"cache backends": ["redis"], "settings sections": ["redis"]}
    assert all_by_name["log-postgres"]["provides"]["log stores"] == ["postgres"]


def test_plugins_respects_the_settings_file_and_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path, "gateway.toml", '[plugins]\ndisable = ["openai"]\n')
    for proc in (
        run("plugins", "--json", "--config", str(cfg), cwd=tmp_path),
        run("plugins", "--json", cwd=tmp_path, GATEWAY_CONFIG=str(cfg)),
        run("plugins", "--json", cwd=tmp_path, GATEWAY__PLUGINS__DISABLE='["openai"]'),
        run("plugins", "--json", cwd=tmp_path, GATEWAY__PLUGINS__ENTRYPOINTS="false"),
    ):
        assert proc.returncode == 0, proc.stderr
        assert "openai" not in {r["name"] for r in msgspec.json.decode(proc.stdout)}
    proc = run("plugins", "--all", cwd=tmp_path, GATEWAY__PLUGINS__ENTRYPOINTS="false")
    assert "gateway.defaults.routing" in proc.stdout and "gateway-openai" not in proc.stdout


# --------------------------------------------------------------------------- config check / schema


def test_config_check_ok(tmp_path: Path) -> None:
    cfg = write(tmp_path, "good.toml", """\
        [server]
        host = "0.0.0.0"
        port = 9000
        workers = 2

        [logging]
        format = "console"

        [security]
        gateway_keys = ["gk-1"]

        [providers.openai]
        base_url = "http://127.0.0.1:9/v1"
        """)
    proc = run("config", "check", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{cfg}: ok\n"
    assert proc.stderr == ""


BAD_FILES = {
    "uninstalled-provider": ('[providers.opnai]\nbase_url = "http://x"\n',
                             ["[providers.opnai]", "did you mean 'openai'", "installed providers:"]),
    "unknown-section": ("[servr]\nport = 1\n", ["unknown settings section [servr]", "did you mean 'server'"]),
    "wrong-type": ('[server]\nport = "abc"\n', ["Expected `int`, got `str`", "$.server.port"]),
    "unknown-key": ("[server]\nprot = 1\n", ["unknown field `prot`", "$.server"]),
    "unknown-provider-key": ('[providers.openai]\nbase_ur = "http://x"\n', ["[providers.openai]", "base_ur"]),
    "essential-disabled": ('[plugins]\ndisable = ["gateway.defaults.routing"]\n',
                           ["'gateway.defaults.routing'", "essential"]),
    "not-toml": ("[server\nport = = 1\n", ["not valid TOML"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_config_check_prints_the_error(tmp_path: Path, case: str) -> None:
    text, needles = BAD_FILES[case]
    cfg = write(tmp_path, "bad.toml", text)
    proc = run("config", "check", str(cfg), cwd=tmp_path)
    assert_clean_failure(proc, *needles)
    assert "ok" not in proc.stdout


def test_config_check_reports_every_mistake_in_one_run(tmp_path: Path) -> None:
    cfg = write(tmp_path, "bad.toml", """\
        [server]
        workers = 0
        port = 99999
        shutdown_timeout = -5
        hots = "x"

        [upstream]
        read_timeout = -1

        [cache]
        backnd = "redis"

        [images]
        ttl = 0

        [loging]
        level = "info"
        """)
    proc = run("config", "check", str(cfg), cwd=tmp_path, GATEWAY__UPSTREAM__CONNECT_TIMEOUT="0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().removeprefix("gateway: ").splitlines()
    assert sorted(lines) == sorted([
        "settings: Expected `int` >= 1 - at `$.server.workers`",
        "settings: Expected `int` <= 65535 - at `$.server.port`",
        "settings: Expected `float` >= 0.0 - at `$.server.shutdown_timeout`",
        "settings: Object contains unknown field `hots` - at `$.server` (did you mean 'host'?)",
        "settings: Expected `float` > 0.0 - at `$.upstream.read_timeout`",
        "settings: Expected `float` > 0.0 - at `$.upstream.connect_timeout` (from GATEWAY__UPSTREAM__CONNECT_TIMEOUT)",
        "settings: Object contains unknown field `backnd` - at `$.cache` (did you mean 'backend'?)",
        "settings: Expected `int` >= 1 - at `$.images.ttl`",
        "unknown settings section [loging] (did you mean 'logging', 'plugins'?)",
    ])


def test_config_check_missing_file(tmp_path: Path) -> None:
    proc = run("config", "check", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert_clean_failure(proc, "cannot read settings file", "nope.toml")


def test_config_check_applies_environment_overrides(tmp_path: Path) -> None:
    cfg = write(tmp_path, "good.toml", "[server]\nport = 9000\n")
    proc = run("config", "check", str(cfg), cwd=tmp_path, GATEWAY__SERVER__PORT="abc")
    assert_clean_failure(proc, "$.server.port")
    proc = run("config", "check", str(cfg), cwd=tmp_path, GATEWAY__PROVIDERS__OPNAI__BASE_URL="http://x")
    assert_clean_failure(proc, "did you mean 'openai'")


def test_config_schema_is_json_schema(tmp_path: Path) -> None:
    proc = run("config", "schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = msgspec.json.decode(proc.stdout)
    defs = schema["$defs"]
    assert schema["$ref"] == "#/$defs/Settings"
    root = defs["Settings"]
    assert root["type"] == "object"
    for section in ("server", "upstream", "security", "logging", "plugins", "providers"):
        assert section in root["properties"]
    # Only keys a settings file may hold: ``sections`` is internal; plugin sections are listed.
    assert "sections" not in root["properties"]
    assert root["additionalProperties"] is False
    assert "openai" in root["properties"]["providers"]["properties"]
    assert root["properties"]["configs"]["additionalProperties"] == {"$ref": "#/$defs/NodeFields"}
    server = defs["ServerSettings"]
    assert server["additionalProperties"] is False
    assert server["properties"]["port"] == {"type": "integer", "minimum": 0, "maximum": 65535, "default": 8787}
    assert set(defs["LoggingSettings"]["properties"]["format"]["enum"]) == {"json", "console"}
    # Every $ref resolves.
    refs = [v for v in _walk(schema) if isinstance(v, str) and v.startswith("#/$defs/")]
    assert refs and all(r.removeprefix("#/$defs/") in defs for r in refs)


def _walk(node: object):  # noqa: ANN202
    if isinstance(node, dict):
        for v in node.values():
            yield v
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


# --------------------------------------------------------------------------- serve: start-up failures


@pytest.mark.parametrize("case", ["uninstalled-provider", "unknown-section", "wrong-type", "essential-disabled"])
def test_serve_refuses_bad_settings(tmp_path: Path, case: str) -> None:
    text, needles = BAD_FILES[case]
    cfg = write(tmp_path, "bad.toml", text)
    port = [] if case == "wrong-type" else ["--port", "0"]  # --port would replace the bad value
    proc = run("serve", *port, "--config", str(cfg), cwd=tmp_path, timeout=15)
    assert_clean_failure(proc, *needles)
    assert "gateway.started" not in proc.stdout


def test_serve_with_a_section_that_is_not_a_table_and_a_flag(tmp_path: Path) -> None:
    cfg = write(tmp_path, "bad.toml", 'server = 5\nlogging = "json"\n')
    proc = run("serve", "--config", str(cfg), "--port", "1", "--log-format", "console", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # every bad section is reported, one line each
    assert proc.stderr.strip().splitlines() == [
        "gateway: settings: Expected `object`, got `int` - at `$.server`",
        "settings: Expected `object`, got `str` - at `$.logging`",
    ]


def test_serve_wrong_type_from_environment(tmp_path: Path) -> None:
    proc = run("serve", cwd=tmp_path, GATEWAY__SERVER__PORT="abc")
    assert_clean_failure(proc, "$.server.port")


@pytest.mark.parametrize("workers", ["1", "2", "3"])
@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "so_reuseport"])
def test_serve_port_in_use(tmp_path: Path, workers: str, reuse_port: bool) -> None:
    """A port in use is one line on stderr naming it and exit 2, however many workers were asked
    for: the port is taken once, before any worker starts.  A port another process holds with
    SO_REUSEPORT (another gateway's workers, say) is in use too: not quietly shared."""
    with socket.socket() as busy:
        if reuse_port:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_all("serve", "--port", str(port), "--workers", workers, cwd=tmp_path, timeout=20)
    line = assert_clean_failure(proc, f"cannot listen on 127.0.0.1:{port}: ", "in use")
    assert line.startswith(f"gateway: cannot listen on 127.0.0.1:{port}: "), line
    # Nothing claims to have started on a port it could not take.
    assert "gateway.started" not in proc.stdout


def test_serve_workers_on_port_0_share_one_port(tmp_path: Path) -> None:
    """``--port 0`` with workers: the port the system picks is the one every worker listens on."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--workers", "2"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=stdout, stderr=stderr,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        started: list[dict[str, Any]] = []
        while len(started) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            data = out.read_bytes()
            whole = data[:data.rfind(b"\n") + 1].splitlines()  # a line being written waits for its end
            started = [e for e in map(msgspec.json.decode, whole) if e.get("event") == "gateway.started"]
        assert len(started) == 2, err.read_text()
        ports = {e["port"] for e in started}
        assert len(ports) == 1 and 0 not in ports and len({e["pid"] for e in started}) == 2
    finally:
        # Its exit code is not this test's: a worker told to stop just after "started", before its
        # loop handles SIGTERM, dies of the signal (not 0).
        proc.terminate()
        proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of it after a failure


def test_version(tmp_path: Path) -> None:
    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"gateway {gateway.__version__}"


def test_serve_bad_flag_is_a_usage_error(tmp_path: Path) -> None:
    proc = run("serve", "--log-format", "xml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "invalid choice: 'xml'" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- plugins from distributions


def make_dist(
    site: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str] | None = None
) -> None:
    """An installed distribution: a ``.dist-info`` with METADATA and entry_points.txt (and its modules)."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gateway]\n{eps}")
    for name, source in (modules or {}).items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))


def test_third_party_distribution_is_discovered(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "acme-tags", "2.3.1", {"acme": "acme_tags"}, {"acme_tags": """\
        from gateway import hookimpl

        @hookimpl
        def gateway_log_fields(ctx):
            return {"acme": True}
        """})
    proc = run("plugins", "--json", cwd=tmp_path, PYTHONPATH=str(site))
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in msgspec.json.decode(proc.stdout)}
    assert rows["acme"] == {
        "name": "acme", "distribution": "acme-tags", "version": "2.3.1", "provides": {},
        "hooks": ["gateway_log_fields"],
    }
    assert rows["openai"]["distribution"] == "gateway-openai"


def test_duplicate_entry_point_names_across_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "acme-images", "1.0", {"openai": "acme_images"}, {"acme_images": "IMPORTED = True\n"})
    for args in (("plugins",), ("serve", "--port", "0"), ("config", "check", str(write(tmp_path, "g.toml", "")))):
        proc = run(*args, cwd=tmp_path, timeout=15, PYTHONPATH=str(site))
        line = assert_clean_failure(proc, "duplicate plugin names", "'openai'")
        assert "gateway-openai" in line and "acme-images" in line


def test_misspelled_hook_in_an_installed_plugin(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "acme-typo", "0.1", {"acme-typo": "acme_typo"}, {"acme_typo": """\
        def gateway_register_provider():
            return []
        """})
    proc = run("plugins", cwd=tmp_path, PYTHONPATH=str(site))
    assert_clean_failure(proc, "plugin 'acme-typo'", "unknown hook 'gateway_register_provider'")
    # Disabling it by name lets the gateway start.
    proc = run("plugins", "--json", cwd=tmp_path, PYTHONPATH=str(site), GATEWAY__PLUGINS__DISABLE='["acme-typo"]')
    assert proc.returncode == 0, proc.stderr
    assert "acme-typo" not in {r["name"] for r in msgspec.json.decode(proc.stdout)}


def test_plugin_that_fails_to_import(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "acme-broken", "0.1", {"broken": "acme_broken"}, {"acme_broken": "import not_a_module_xyz\n"})
    proc = run("plugins", cwd=tmp_path, PYTHONPATH=str(site))
    assert_clean_failure(proc, "a plugin failed to load", "not_a_module_xyz")


def test_config_check_prints_every_saved_config_error_with_its_path(tmp_path: Path) -> None:
    cfg = write(tmp_path, "routes.toml", """
[virtual_keys.prod]
provider = "openai"
api_key_env = "GATEWAY_TEST_UNSET_KEY"

[configs.pc-one]
strategy = { mode = "fallback" }
targets = [ { provider = "openai", api_key = "k", weight = "heavy" } ]

[configs.pc-two]
strategy = { mode = "loadbalance" }
targets = [ { provider = "openai", api_key = "k", weight = 0 } ]
""")
    proc = run("config", "check", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = proc.stderr
    assert "[virtual_keys.prod]: environment variable GATEWAY_TEST_UNSET_KEY is not set" in err
    assert "[configs.pc-one]" in err and "$.targets[0].weight" in err
    assert "[configs.pc-two]" in err and "weight is 0" in err
    good = write(tmp_path, "good.toml", """
[configs.pc-ok]
strategy = { mode = "fallback" }
targets = [ { provider = "openai", api_key = "k" }, { provider = "openai", api_key = "k2" } ]
""")
    proc = run("config", "check", str(good), cwd=tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout
