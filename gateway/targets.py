"""The Config object (``x-portkey-config``): parsing, validation and inheritance.

A config is a tree of nodes.  A node with ``targets`` is routed by the
strategy its ``strategy.mode`` names (a plugin); a node with ``provider`` (or
``virtual_key``) is a leaf the core sends to a provider.  Parsing resolves
inheritance once, so every :class:`Target` carries its effective settings.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from gateway import headers as h
from gateway.circuit import CircuitBreakerConfig
from gateway.errors import ConfigError
from gateway.catalog import provider_slug
from gateway.redact import shown
from gateway.settings import suggest
from gateway.strategy import StrategyConfig

if TYPE_CHECKING:  # pragma: no cover
    from gateway.registry import Registry


class Secret(str):
    """A string that never shows itself in ``repr`` (so never in a log or traceback)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class StoredSecret(Secret):
    """A credential from the settings file (a saved config's ``api_key``): the operator's,
    so it never goes to a host the caller chose."""

    __slots__ = ()


class _Lenient(msgspec.Struct, frozen=True, kw_only=True):
    pass


class RetryConfig(_Lenient, forbid_unknown_fields=True):
    attempts: int = 0
    on_status_codes: list[int] | None = None
    use_retry_after_header: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.attempts <= 10:
            raise ValueError("`attempts` must be between 0 and 10")


class CacheConfig(_Lenient, forbid_unknown_fields=True):
    mode: str = "simple"
    max_age: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("simple", "semantic"):
            raise ValueError(f"cache mode must be 'simple' or 'semantic', not {self.mode!r}")
        if self.max_age is not None and self.max_age < 0:
            raise ValueError("`max_age` must not be negative")


class NodeFields(_Lenient):
    """The fields the core knows on every node; others are provider options."""

    name: str | None = None
    provider: str | None = None
    api_key: str | None = None
    virtual_key: str | None = None
    strategy: dict[str, Any] | None = None
    targets: list[dict[str, Any]] | None = None
    weight: float = 1.0
    override_params: dict[str, Any] | None = None
    retry: RetryConfig | None = None
    request_timeout: int | None = None
    cache: CacheConfig | None = None
    custom_host: str | None = None
    forward_headers: list[str] | None = None
    strict_params: bool | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError("`weight` must not be negative")
        if self.request_timeout is not None and not 0 < self.request_timeout <= h.MAX_TIMEOUT_MS:
            raise ValueError(f"`request_timeout` must be a positive number of milliseconds, at most {h.MAX_TIMEOUT_MS}")


NODE_FIELDS = frozenset(NodeFields.__struct_fields__)
#: Deepest nesting of ``targets`` a config may have (real trees are two or three deep;
#: a deeper one only costs stack in every walk of the tree).
MAX_DEPTH = 32
#: Fields a child takes from its parent unless it sets its own.
INHERITED = ("retry", "request_timeout", "cache", "custom_host", "forward_headers", "strict_params")
#: Keys the hosted product accepts that have no meaning here; accepted and ignored
#: so that configs written for it work unchanged.
IGNORED_FIELDS = frozenset(
    {
        "before_request_hooks", "after_request_hooks", "input_guardrails", "output_guardrails",
        "default_input_guardrails", "default_output_guardrails", "strict_open_ai_compliance",
        "cache_namespace", "id", "type",
    }
)


class Target(msgspec.Struct, kw_only=True, dict=True):
    """One node of a resolved config, with inherited settings already applied.

    ``dict=True`` gives room for what is derived from a node once and reused by every
    request through a cached config (its provider options, parsed), never encoded."""

    path: str = "config"
    name: str | None = None
    provider: str | None = None
    api_key: Secret | None = None
    virtual_key: str | None = None
    strategy: StrategyConfig | None = None
    targets: tuple[Target, ...] = ()
    weight: float = 1.0
    override_params: dict[str, Any] | None = None
    retry: RetryConfig | None = None
    request_timeout: int | None = None
    cache: CacheConfig | None = None
    custom_host: str | None = None
    forward_headers: list[str] | None = None
    #: A parameter value the model does not support is a 400 (not mapped to the nearest).
    strict_params: bool | None = None
    #: The circuit breaker over this node's targets (a node), or over this target (a leaf):
    #: the nearest ``strategy.cb_config`` at or above it.
    cb_config: CircuitBreakerConfig | None = None
    #: Provider options (``resource_name``, ``aws_region``, ...), checked by the provider.
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    #: A node of a saved config: its key and custom host are the operator's, not the caller's.
    saved: bool = False

    @property
    def json_path(self) -> str:
        """Where this node is, as error messages name it (``$.targets[1]``)."""
        return _json_path(self.path)


class CheckedParams(msgspec.Struct):
    """The unified parameters whose type the core relies on, in a request body
    (``handlers.GenerationView``) and in ``override_params`` alike; any other parameter is the
    provider's to judge."""

    prompt: str | None = None
    model: str | None = None
    n: int | None = None
    size: str | None = None
    response_format: str | None = None


def _json_path(path: str) -> str:
    return "$" + path[len("config"):]


def located(error: msgspec.ValidationError, path: str) -> str:
    """msgspec's ``<message> - at `$.field``` re-rooted at the config node ``path``."""
    msg = str(error)
    where = _json_path(path)
    if " - at `$" in msg:
        msg, _, at = msg.rpartition(" - at `$")
        where += at.rstrip("`")
    return f"{msg} - at `{where}`"


def parse(raw: Any, registry: Registry, *, source: str = "x-portkey-config",
          virtual_keys: Mapping[str, Any] | None = None, visible: Collection[str] | None = None) -> Target:
    """Validate a decoded config and resolve inheritance; raise ConfigError naming the path.

    With ``virtual_keys``, a ``virtual_key`` or provider slug that is not among them is an error
    too, naming the ones in ``visible`` (the caller's, when a gateway key's scope narrows them;
    all of them by default) and no other.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"Invalid config in {source}: expected a JSON object", param="x-portkey-config")
    return _node(raw, "config", None, registry, source, virtual_keys, visible)


def _node(raw: dict[str, Any], path: str, parent: Target | None, registry: Registry, source: str,
          virtual_keys: Mapping[str, Any] | None, visible: Collection[str] | None, depth: int = 0) -> Target:
    core = {}
    options = {}
    for k, v in raw.items():
        if k in NODE_FIELDS:
            core[k] = v
        elif k not in IGNORED_FIELDS:
            options[k] = v
    try:
        f = msgspec.convert(core, NodeFields)
    except msgspec.ValidationError as e:
        raise ConfigError(f"Invalid config in {source}: {located(e, path)}", param="x-portkey-config") from None

    if f.override_params:
        try:
            msgspec.convert(f.override_params, CheckedParams)
        except msgspec.ValidationError as e:
            raise ConfigError(f"Invalid config in {source}: {located(e, path + '.override_params')}",
                              param="x-portkey-config") from None
    where = _json_path(path)
    slug = provider_slug(f.provider) if f.provider is not None else None
    if slug is not None:
        # Portkey 2.x: `"provider": "@openai-prod"` is the virtual key of that name.
        if f.virtual_key is not None and f.virtual_key != slug:
            raise ConfigError(f"Invalid config in {source}: `provider` {f.provider!r} and `virtual_key` "
                              f"{shown(f.virtual_key)} name different virtual keys - at `{where}`",
                              param="x-portkey-config", code="conflicting_provider")
        if virtual_keys is not None and slug not in virtual_keys:
            names = sorted(virtual_keys if visible is None else visible)
            raise ConfigError(f"Invalid config in {source}: unknown provider slug {shown(f.provider)}"
                              f"{suggest(slug, names)}; provider slugs: "
                              f"{', '.join('@' + n for n in names) or 'none'} - at `{where}.provider`",
                              param="x-portkey-config", code="unknown_provider_slug")
        f = msgspec.structs.replace(f, provider=None, virtual_key=slug)
    if f.targets is not None and (f.provider or f.virtual_key):
        raise ConfigError(
            f"Invalid config in {source}: a node has either `targets` or `provider`, not both - at `{where}`",
            param="x-portkey-config",
        )
    strategy = None
    if f.targets is not None:
        mode = f.strategy.get("mode") if f.strategy is not None else None
        if not isinstance(mode, str):
            raise ConfigError(
                f"Invalid config in {source}: a node with `targets` needs `strategy.mode` - at `{where}`",
                param="x-portkey-config",
            )
        if not f.targets:
            raise ConfigError(f"Invalid config in {source}: `targets` is empty - at `{where}.targets`", param="x-portkey-config")
        registry.check_strategy(mode, f"{source} at `{where}.strategy.mode`")
        try:
            strategy = msgspec.convert(f.strategy, registry.strategy_configs, strict=False)
        except msgspec.ValidationError as e:
            raise ConfigError(f"Invalid config in {source}: {located(e, path + '.strategy')}",
                              param="x-portkey-config") from None
    elif not (f.provider or f.virtual_key) and parent is not None:
        # The root may leave the provider to the x-portkey-provider header.
        raise ConfigError(
            f"Invalid config in {source}: a target needs `provider` (or `virtual_key`) or `targets` - at `{where}`",
            param="x-portkey-config",
        )
    if virtual_keys is not None and f.virtual_key is not None and f.virtual_key not in virtual_keys:
        raise ConfigError(
            f"Invalid config in {source}: unknown virtual key {shown(f.virtual_key)}"
            f"{suggest(f.virtual_key, virtual_keys if visible is None else visible)} - at `{where}.virtual_key`",
            param="x-portkey-config", code="unknown_virtual_key",
        )
    if options and f.targets is not None:
        bad = sorted(options)[0]
        raise ConfigError(f"Invalid config in {source}: unknown field `{bad}` - at `{where}`", param="x-portkey-config")

    override = f.override_params
    if parent is not None and parent.override_params:
        override = {**parent.override_params, **(override or {})}
    inherited = {}
    for name in INHERITED:
        value = getattr(f, name)
        inherited[name] = value if value is not None or parent is None else getattr(parent, name)
    own_cb = strategy.cb_config if strategy is not None else None
    inherited["cb_config"] = own_cb if own_cb is not None or parent is None else parent.cb_config
    node = Target(
        path=path,
        name=f.name,
        provider=f.provider,
        api_key=Secret(f.api_key) if f.api_key is not None else None,
        virtual_key=f.virtual_key,
        strategy=strategy,
        weight=f.weight,
        override_params=override,
        options=options,
        **inherited,
    )
    if f.targets is not None:
        children = []
        for i, child in enumerate(f.targets):
            if not isinstance(child, dict):
                raise ConfigError(
                    f"Invalid config in {source}: expected an object - at `{where}.targets[{i}]`", param="x-portkey-config"
                )
            if depth >= MAX_DEPTH:
                raise ConfigError(f"Invalid config in {source}: `targets` nested more than {MAX_DEPTH} levels deep "
                                  f"- at `{where}.targets[{i}]`", param="x-portkey-config")
            children.append(_node(child, f"{path}.targets[{i}]", node, registry, source, virtual_keys, visible, depth + 1))
        node.targets = tuple(children)
        registry.strategy(mode).validate(node, source)
    return node
