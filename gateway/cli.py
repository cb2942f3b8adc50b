"""``gateway serve | demo | plugins | config check FILE``."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import msgspec
from aiohttp import web

from gateway import __version__
from gateway import settings as settings_mod
from gateway.app import build_plugin_manager, create_app
from gateway.demo.api import DemoApi
from gateway.demo.banner import banner, base_url
from gateway.demo.plugin import DemoPlugin
from gateway.demo.settings import demo_settings
from gateway.errors import StartupError
from gateway.keys import GATEWAY
from gateway.logging import configure_logging
from gateway.plugins import describe_plugins, nameable
from gateway.schema import settings_schema
from gateway.server import bind, serve


def _raw_settings(path: str | None) -> dict[str, Any]:
    raw = settings_mod.read_file(path) if path else {}
    return settings_mod.apply_env(raw)


def _override(raw: dict[str, Any], section: str, key: str, value: Any) -> None:
    """Set ``raw[section][key]`` from a command-line flag; a section that is not a
    table is left for validation to report (instead of a TypeError traceback)."""
    if value is None:
        return
    node = raw.setdefault(section, {})
    if isinstance(node, dict):
        node[key] = value


def _cmd_serve(args: argparse.Namespace) -> int:
    raw = _raw_settings(args.config)
    _override(raw, "server", "host", args.host)
    _override(raw, "server", "port", args.port)
    _override(raw, "server", "workers", args.workers)
    _override(raw, "logging", "format", args.log_format)
    # Validate everything once in the parent so errors are printed once, clearly.
    app = create_app(raw)
    settings = app[GATEWAY].settings
    return serve(raw, settings.server)


def _cmd_demo(args: argparse.Namespace) -> int:
    """The gateway with the demo provider and its service (gateway/demo/), in one process."""
    if args.latency < 0 or not 0 <= args.fail_rate <= 1:
        raise StartupError("--latency must be at least 0 and --fail-rate from 0 to 1")
    plugin = DemoPlugin(DemoApi(args.latency, args.fail_rate), bind("127.0.0.1", 0, reuse_port=False))
    raw = _raw_settings(args.config)
    pm = build_plugin_manager(raw, plugins=[plugin])
    sections = {k: v for found in pm.hook.gateway_register_config_sections() for k, v in found.items()}
    demo = demo_settings(raw, host=args.host, port=args.port, base_url=plugin.base_url, sections=sections)
    app = create_app(demo.raw, pm=pm)
    settings = app[GATEWAY].settings
    configure_logging(settings.logging.format, settings.logging.level)
    sock = bind(settings.server.host, settings.server.port, reuse_port=False)
    url = base_url(settings.server.host, sock.getsockname()[1])
    paths = {getattr(r, "canonical", "") for r in app.router.resources()}
    ui = demo.admin and any(p == "/ui" or p.startswith("/ui/") for p in paths)
    text = banner(url, latency=args.latency, fail_rate=args.fail_rate, ui=ui, metrics="/metrics" in paths,
                  logs=demo.admin and "/v1/logs" in paths, admin_key=demo.admin_key)

    async def ready(_app: web.Application) -> None:
        # After every start-up context (the demo service, the stores): a request sent on
        # seeing the banner waits in the listen backlog until the server accepts it.
        sys.stdout.write(text)
        sys.stdout.flush()

    sock.listen(128)
    app.on_startup.append(ready)
    web.run_app(app, sock=sock, handler_cancellation=True, shutdown_timeout=settings.server.shutdown_timeout,
                access_log=None, print=None, handle_signals=True)
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    raw = _raw_settings(args.config)
    pm = build_plugin_manager(raw)
    every = describe_plugins(pm)
    rows = every if args.all else [r for r in every if not r["name"].startswith("gateway.defaults.")]
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(rows)).decode() + "\n")
        return 0
    if not rows:
        print("no plugins installed (gateway plugins --all lists the built-in ones)")
    for r in rows:
        print(f"{r['name']}  {r['distribution'] or '-'} {r['version'] or ''}".rstrip())
        for kind, names in r["provides"].items():
            print(f"    {kind}: {', '.join(names)}")
        print(f"    hooks: {', '.join(r['hooks']) or '-'}")
    # What a user writes in a config or the settings, the built-in plugins' names included.
    print("\nnames a config or the settings can use:")
    for kind, names in nameable(every).items():
        print(f"    {kind}: {', '.join(names)}")
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:

    raw = _raw_settings(args.file)
    create_app(raw)
    print(f"{args.file}: ok")
    return 0


def _cmd_config_schema(args: argparse.Namespace) -> int:

    schema = settings_schema(build_plugin_manager(_raw_settings(None)))
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(schema)).decode() + "\n")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description="Self-hosted AI gateway for image generation")
    p.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port to listen on (default 8787)")
    s.add_argument("--config", help="settings file (TOML)", default=os.environ.get("GATEWAY_CONFIG"))
    s.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    s.add_argument("--log-format", choices=("json", "console"), help="log line format (default json)")
    s.set_defaults(func=_cmd_serve)
    d = sub.add_parser("demo", help="run the gateway with a built-in fake image provider (no key needed)")
    d.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    d.add_argument("--port", type=int, help="port to listen on (default 8787)")
    d.add_argument("--latency", type=float, default=2.0, help="seconds each image takes, give or take 25%% (default 2)")
    d.add_argument("--fail-rate", type=float, default=0.0,
                   help="share of the provider's calls that fail with a 503, 0 to 1 (default 0)")
    d.add_argument("--config", help="settings file (TOML) to start from (GATEWAY_CONFIG is not read)")
    d.set_defaults(func=_cmd_demo)
    pl = sub.add_parser("plugins", help="list discovered plugins, their versions and hooks")
    pl.add_argument("--all", action="store_true", help="include the built-in plugins")
    pl.add_argument("--json", action="store_true", help="print JSON")
    pl.add_argument("--config", help="settings file (TOML)", default=os.environ.get("GATEWAY_CONFIG"))
    pl.set_defaults(func=_cmd_plugins)
    c = sub.add_parser("config", help="settings file tools")
    csub = c.add_subparsers(dest="config_command", required=True)
    ck = csub.add_parser("check", help="validate a settings file and print every error")
    ck.add_argument("file")
    ck.set_defaults(func=_cmd_config_check)
    cs = csub.add_parser("schema", help="print the JSON Schema of the settings file")
    cs.set_defaults(func=_cmd_config_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (StartupError, settings_mod.SettingsError) as e:
        print(f"gateway: {settings_mod.env_sources(str(e))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
