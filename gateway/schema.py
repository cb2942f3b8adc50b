"""The JSON Schema of the settings file, with what installed plugins add to it."""
from __future__ import annotations

from typing import Any

import msgspec

from gateway.settings import Settings
from gateway.strategy import tagged_config
from gateway.targets import NodeFields


def settings_schema(pm: Any) -> dict[str, Any]:
    """JSON Schema (2020-12) of the whole settings file for this plugin set."""
    sections: dict[str, type] = {}
    for contributed in pm.hook.gateway_register_config_sections():
        sections.update(contributed)
    providers: dict[str, Any] = {}
    for classes in pm.hook.gateway_register_providers():
        for cls in classes:
            providers[cls.name] = cls
    strategies = [tagged_config(cls) for classes in pm.hook.gateway_register_routing_strategies() for cls in classes]
    options = [p.Options for p in providers.values()]
    types = [Settings, NodeFields, *sections.values(), *(p.Settings for p in providers.values()), *strategies,
             *options]
    schemas, defs = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    option_schemas = schemas[len(schemas) - len(options):]
    schemas = schemas[:len(schemas) - len(options)]
    strategy_schemas = schemas[len(schemas) - len(strategies):]
    schemas = schemas[:len(schemas) - len(strategies)]
    per_provider = _provider_options(providers, option_schemas, defs)
    root = defs[Settings.__name__]
    props = root["properties"]
    # ``sections`` is where plugin sections land after decoding, not a key of the file.
    props.pop("sections", None)
    for name, schema in zip(sections, schemas[2 : 2 + len(sections)]):
        props[name] = schema
    provider_schemas = schemas[2 + len(sections):]
    props["providers"] = {
        "type": "object",
        "properties": dict(zip(providers, provider_schemas)),
        "additionalProperties": False,
    }
    # A config node: core fields, nested targets, and provider options beside them.
    node = defs[NodeFields.__name__]
    node["properties"]["targets"] = {"type": "array", "items": {"$ref": f"#/$defs/{NodeFields.__name__}"}}
    # ``strategy``: each installed strategy's own fields, told apart by ``mode``.
    node["properties"]["strategy"] = {"anyOf": strategy_schemas} if strategy_schemas else {"type": "object"}
    node["additionalProperties"] = True
    node["title"] = "Config"
    if per_provider:
        node["allOf"] = per_provider
    props["configs"] = {"type": "object", "additionalProperties": {"$ref": f"#/$defs/{NodeFields.__name__}"}}
    props["virtual_keys"] = {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["provider"],
            "properties": {
                "provider": {"enum": sorted(providers)} if providers else {"type": "string"},
                "api_key": {"type": "string"},
                "api_key_env": {"type": "string", "description": "environment variable holding the key"},
                "api_key_file": {"type": "string", "description": "file holding the key"},
                "allowed_custom_hosts": {
                    "type": "array", "items": {"type": "string", "minLength": 1},
                    "description": "base URLs or host names a request with this key may name as its custom host",
                },
            },
            # The provider's own options (``resource_name``, ``aws_auth_type``, ...): ``allOf``.
            "additionalProperties": True,
            **({"allOf": per_provider} if per_provider else {}),
        },
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/$defs/{Settings.__name__}",
            "$defs": defs}


def _provider_options(providers: dict[str, Any], schemas: list[dict[str, Any]],
                      defs: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``if provider is X then its options are typed so`` clause per provider with options.

    A config target or a virtual key holds the core's fields and the provider's options side
    by side, so the clause types the options without closing the object (the provider itself
    names an unknown one, with its path, at start-up and per request).
    """
    out = []
    for name, ref in zip(providers, schemas):
        own = defs[ref["$ref"].rpartition("/")[2]] if "$ref" in ref else ref
        props = own.get("properties")
        if not props:
            continue
        props = dict(props)
        for alias, option in providers[name].option_aliases.items():
            if option in props:
                props[alias] = {**props[option], "description": f"another name for `{option}` (Portkey's)"}
        then: dict[str, Any] = {"properties": props}
        if own.get("description"):
            then["description"] = own["description"]
        out.append({"if": {"properties": {"provider": {"const": name}}, "required": ["provider"]}, "then": then})
    return out
