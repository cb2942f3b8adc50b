"""The gateway's own settings: a TOML file, environment overrides, embedded defaults.

Decoded in two phases: the core sections here first, then the sections that
plugins register (``gateway_register_config_sections``) and per-provider
settings, once the plugin manager exists.  Every error names its path.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "GATEWAY__"

#: Value ranges the settings take (a zero worker count or a negative timeout is a mistake,
#: reported with its path at start-up and by ``gateway config check``).
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Size = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
WholeSeconds = Annotated[int, msgspec.Meta(ge=1)]


class Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every settings struct.

    ``forbid_unknown_fields`` turns a misspelled key into an error at start-up
    instead of a silently ignored setting; ``frozen`` makes settings safe to
    share between concurrent requests; ``kw_only`` keeps field order free.
    """


class ServerSettings(Base):
    """Listening socket and request limits."""

    host: str = "127.0.0.1"
    port: Port = 8787
    #: Processes sharing the port through SO_REUSEPORT (one per core is typical).
    workers: Count = 1
    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: Count = 64 * 1024 * 1024
    #: Seconds in-flight requests get to finish after SIGTERM.
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30.0


class UpstreamSettings(Base):
    """The one HTTP client pool used for every provider call."""

    #: Seconds to establish a TCP/TLS connection to a provider.
    connect_timeout: Seconds = 10.0
    #: Seconds a provider may stay silent (no byte received) before the call fails.
    #: Image models often answer only after minutes, so this is long by default;
    #: use ``request_timeout`` in a config or ``x-portkey-request-timeout`` for a
    #: per-request bound.
    read_timeout: Seconds = 600.0
    #: Open connections across all providers.
    max_connections: Count = 1024
    #: Open connections to one host (0 = no per-host limit).
    max_connections_per_host: Size = 0
    #: Seconds a DNS answer is reused.
    dns_cache_ttl: Size = 300


class SecuritySettings(Base):
    """Who may call the gateway and where it may send requests."""

    #: Host names and address ranges (``10.0.0.0/8``, ``127.0.0.1``) a caller-influenced
    #: connection (a custom host, an image URL a provider answered with) may reach although
    #: they are private, loopback or special-use.  Unset: loopback while ``server.host`` is a
    #: loopback address, nothing otherwise.
    trusted_hosts: list[str] | None = None
    #: When not empty, every request must carry one of these in ``x-portkey-api-key``.
    gateway_keys: list[str] = msgspec.field(default_factory=list)


class GatewayKeySettings(Base):
    """``[gateway_keys.<name>]``: one named gateway key, what it may use and how much.

    The key comes from ``key_env`` or ``key_file`` (inline ``key`` works but puts a
    secret in the file); the gateway keeps only its SHA-256.  A list that is absent
    allows everything; ``[]`` allows nothing.  Limits count fixed windows (a minute,
    a UTC day, a UTC calendar month).
    """

    #: Environment variable holding the key.
    key_env: str | None = None
    #: File holding the key (surrounding whitespace dropped).
    key_file: str | None = None
    #: The key itself (discouraged: the settings file then holds a secret).
    key: str | None = None
    #: Virtual keys its requests may use, however named (header, inline or saved config).
    virtual_keys: list[str] | None = None
    #: Saved config ids it may select with ``x-portkey-config``.
    configs: list[str] | None = None
    #: Providers its requests may reach, directly or through a virtual key.
    providers: list[str] | None = None
    #: May it send its own provider credentials (``Authorization`` for a provider, a
    #: provider's key headers, ``api_key`` or credential options in an inline config).
    allow_provider_keys: bool = True
    #: May it name a custom host (``x-portkey-custom-host``, ``custom_host`` in an inline config).
    allow_custom_hosts: bool = False
    requests_per_minute: Annotated[int, msgspec.Meta(ge=0)] | None = None
    images_per_minute: Annotated[int, msgspec.Meta(ge=0)] | None = None
    images_per_day: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: Budgets, in the currency of ``image_cost``.
    cost_per_day: Annotated[float, msgspec.Meta(ge=0)] | None = None
    cost_per_month: Annotated[float, msgspec.Meta(ge=0)] | None = None
    #: What one image costs this key (else ``limits.image_cost``).
    image_cost: Annotated[float, msgspec.Meta(ge=0)] | None = None


class LimitsSettings(Base):
    """How the rate limits and budgets of ``[gateway_keys.*]`` are counted."""

    #: What one image costs, for the budgets (``cost_per_day``, ``cost_per_month``) of
    #: keys that set no ``image_cost`` of their own.
    image_cost: Annotated[float, msgspec.Meta(ge=0)] | None = None
    #: When the shared counter store (the Redis cache backend) cannot be reached:
    #: ``local`` counts in this instance's memory until it is back (each instance then
    #: holds the limits on its own); ``refuse`` answers 503 to keys with limits.
    when_store_down: Literal["local", "refuse"] = "local"


class LoggingSettings(Base):
    """The structured request log."""

    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class MetricsSettings(Base):
    """Prometheus metrics at ``GET /metrics`` (names and labels: docs/metrics.md)."""

    #: Off: no ``/metrics`` route and nothing counted.
    enabled: bool = True


class PluginSettings(Base):
    """Which plugins load."""

    #: Discover installed plugins through the ``gateway`` entry-point group.
    entrypoints: bool = True
    #: Plugin names (entry-point names) not to load.
    disable: list[str] = msgspec.field(default_factory=list)


class CacheDefault(Base):
    """The cache a target gets when its config names none."""

    mode: Literal["simple"] = "simple"
    max_age: WholeSeconds | None = None


class CacheSettings(Base):
    """The response cache (per target: ``cache: {mode: "simple", max_age: <s>}`` in a config)."""

    #: A registered cache backend: ``memory`` (built in) or another a plugin registers
    #: (gateway-cache-redis: ``redis``, with its own ``[redis]`` section).
    backend: str = "memory"
    #: Bytes the ``memory`` backend holds before the least recently used entries go.
    memory_max_bytes: Size = 256 * 1024 * 1024
    #: Largest response body stored.
    max_entry_bytes: Count = 32 * 1024 * 1024
    #: Seconds an entry lives when its config gives no ``max_age``.
    default_max_age: WholeSeconds = 86400
    #: When set, targets without a ``cache`` config are cached like this.
    default: CacheDefault | None = None
    #: Seconds one backend call may take before the request goes on without the cache.
    op_timeout: Seconds = 0.5
    #: Seconds identical requests wait for the one in flight before calling upstream themselves.
    lock_timeout: Seconds = 600.0


class ImagesSettings(Base):
    """Images the gateway stores and serves at ``/v1/images/files/{id}``."""

    #: A registered image store: ``local`` (a directory on this instance) or
    #: ``cache`` (the cache backend; with Redis every instance serves every image).
    store: str = "local"
    #: Directory of the ``local`` store.
    directory: str = msgspec.field(default_factory=lambda: os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-images"))
    #: Bytes the ``local`` store keeps before the oldest images go.
    max_bytes: Count = 1024 * 1024 * 1024
    #: Seconds a stored image lives (at least as long as a cache entry pointing at it).
    ttl: WholeSeconds = 86400
    #: Seconds between clean-ups of the ``local`` store.
    sweep_interval: Seconds = 60.0
    #: Base of the URLs handed out (``https://gateway.example.com``).  Unset: the request's
    #: Host when ``url_hosts`` lists it (or the proxy headers when ``forwarded_headers``),
    #: else the address and port the request came in on.
    public_url: str | None = None
    #: ``host[:port]`` values of ``Host`` (or ``X-Forwarded-Host``) that image URLs may be
    #: built on (``gateway.internal:8787``); any other Host gets the gateway's own address.
    url_hosts: list[str] = msgspec.field(default_factory=list)
    #: Trust ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` for the base of image URLs (only
    #: behind a proxy that sets them); still checked against ``url_hosts`` when it lists any.
    forwarded_headers: bool = False
    #: The secret that signs image URLs (at least 32 characters; prefer the ``_env`` or
    #: ``_file`` form).  Unset: generated at start-up and shared through the image store
    #: (a file in ``directory``; with ``store = "cache"``, a key in the cache backend).
    url_secret: str | None = None
    #: The environment variable holding ``url_secret``.
    url_secret_env: str | None = None
    #: A file holding ``url_secret``.
    url_secret_file: str | None = None
    #: images.edits: input images one edit may carry (``image[]``; OpenAI takes 16).
    max_input_images: Count = 16
    #: images.edits: bytes of one uploaded file (OpenAI: under 50 MB).
    max_input_file_bytes: Count = 50 * 1024 * 1024
    #: images.edits: parts of one multipart form (files and text fields).
    max_form_parts: Count = 64
    #: Seconds between keep-alive comments of a stream while nothing else is sent, so a
    #: proxy's idle time-out never cuts a long generation.
    stream_keepalive: Seconds = 5.0


class ProviderSettings(Base):
    """Settings every provider accepts under ``[providers.<name>]``."""

    #: Replaces the provider's default API base URL (a trusted, operator-set value).
    base_url: str | None = None


class Settings(Base):
    """The whole settings file."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    upstream: UpstreamSettings = msgspec.field(default_factory=UpstreamSettings)
    security: SecuritySettings = msgspec.field(default_factory=SecuritySettings)
    #: Named gateway keys with scopes and limits (``[gateway_keys.<name>]``).
    gateway_keys: dict[str, GatewayKeySettings] = msgspec.field(default_factory=dict)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    plugins: PluginSettings = msgspec.field(default_factory=PluginSettings)
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    images: ImagesSettings = msgspec.field(default_factory=ImagesSettings)
    #: Per-provider settings, ``[providers.openai] base_url = ...``.
    providers: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    #: Provider credentials by name (``x-portkey-virtual-key``, a target's ``virtual_key``).
    virtual_keys: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    #: Routing configs by id (``x-portkey-config: <id>``).
    configs: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    #: Sections owned by plugins (validated in phase two).
    sections: dict[str, Any] = msgspec.field(default_factory=dict)


CORE_SECTIONS = frozenset(Settings.__struct_fields__) - {"sections"}


class SettingsError(ValueError):
    """Settings that do not validate; ``str()`` is a line per problem."""


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML settings file into a plain dict."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SettingsError(f"cannot read settings file {path}: {e.strerror}") from None
    try:
        return msgspec.toml.decode(data)
    except msgspec.DecodeError as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from None


def apply_env(raw: dict[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge ``GATEWAY__SECTION__KEY=value`` variables into ``raw`` (a new dict).

    Values are read as JSON when they parse (numbers, booleans, lists) and as
    plain strings otherwise.
    """
    environ = os.environ if environ is None else environ
    out = _deep_copy(raw)
    # Sorted, so a whole-section variable (GATEWAY__SERVER) is applied before the
    # keys inside it (GATEWAY__SERVER__PORT) whatever the environment's order.
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if not keys:
            continue
        try:
            parsed: Any = msgspec.json.decode(value)
        except msgspec.DecodeError:
            parsed = value
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise SettingsError(f"environment variable {name}: {k} is not a section")
        node[keys[-1]] = parsed
    return out


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def build(raw: Mapping[str, Any], sections: Mapping[str, type] | None = None) -> Settings:
    """Validate ``raw`` into :class:`Settings`; plugin ``sections`` are validated too.

    With ``sections=None`` unknown top-level keys are kept aside unchecked (phase one).
    """
    core = {k: v for k, v in raw.items() if k in CORE_SECTIONS}
    rest = {k: v for k, v in raw.items() if k not in CORE_SECTIONS}
    errors: list[str] = []
    try:
        settings = msgspec.convert(core, Settings, strict=False)
    except msgspec.ValidationError:
        # Every problem in one run, each with its path, not only the first msgspec meets.
        errors.extend(f"settings: {line}" for line in errors_in(core, Settings, "$"))
        settings = None
    decoded: dict[str, Any] = {}
    if sections is not None:
        for key, value in rest.items():
            typ = sections.get(key)
            if typ is None:
                errors.append(f"unknown settings section [{key}]{_suggest(key, [*CORE_SECTIONS, *sections])}")
                continue
            try:
                decoded[key] = msgspec.convert(value, typ, strict=False)
            except msgspec.ValidationError:
                errors.extend(f"settings [{key}]: {line}" for line in errors_in(value, typ, "$"))
        for key, typ in sections.items():
            if key not in decoded and key not in rest:
                try:
                    decoded[key] = msgspec.convert({}, typ)
                except msgspec.ValidationError as e:
                    errors.append(f"settings [{key}]: {e}")
    else:
        decoded = dict(rest)
    if errors:
        raise SettingsError("\n".join(errors))
    assert settings is not None
    return msgspec.structs.replace(settings, sections=decoded)


def errors_in(value: Any, typ: Any, path: str) -> list[str]:
    """Every problem of ``value`` read as ``typ``, each ending with its path
    (``- at `$.server.port```): msgspec stops at the first, so a struct's keys are checked
    one by one (an unknown key with a "did you mean"), a table's entries one by one."""
    try:
        msgspec.convert(value, typ, strict=False)
        return []
    except msgspec.ValidationError as e:
        first = _at(str(e), path)
    out: list[str] = []
    if isinstance(typ, type) and issubclass(typ, msgspec.Struct) and isinstance(value, dict):
        fields = {f.encode_name: f for f in msgspec.structs.fields(typ)}
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                out.append(f"Object contains unknown field `{key}` - at `{path}`{_suggest(key, fields)}")
            else:
                out.extend(errors_in(item, field.type, f"{path}.{key}"))
        out.extend(f"Object missing required field `{name}` - at `{path}`"
                   for name, field in fields.items() if field.required and name not in value)
    elif getattr(typ, "__origin__", None) is dict and isinstance(value, dict):
        item_type = typ.__args__[1]
        for key, item in value.items():
            out.extend(errors_in(item, item_type, f"{path}.{key}"))
    # A check of the whole (a struct's own rule across fields) when every part passed alone.
    return out or [first]


def _at(message: str, path: str) -> str:
    """msgspec's message with its ``$``-relative path made absolute."""
    if " - at `$" in message:
        return message.replace(" - at `$", f" - at `{path}", 1)
    return f"{message} - at `{path}`"


def env_sources(message: str, environ: Mapping[str, str] | None = None) -> str:
    """``message`` (settings errors, one per line) with the environment variable that set
    each bad path named: ``... - at `$.server.port` (from GATEWAY__SERVER__PORT)``."""
    environ = os.environ if environ is None else environ
    out = []
    for line in message.splitlines():
        start = line.find("- at `$.")
        if start >= 0:
            keys = line[start + len("- at `$."):].split("`", 1)[0].split(".")
            for depth in range(len(keys), 0, -1):
                name = ENV_PREFIX + "__".join(k.upper() for k in keys[:depth])
                if name in environ:
                    line = f"{line} (from {name})"
                    break
        out.append(line)
    return "\n".join(out)


def _suggest(word: str, choices: list[str] | tuple[str, ...] | Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def suggest(word: str, choices: Any) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    return _suggest(word, choices)
