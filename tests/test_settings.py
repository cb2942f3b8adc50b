"""The settings layer: TOML file, ``GATEWAY__SECTION__KEY`` environment overrides, validation with paths."""
from __future__ import annotations

from typing import Any

import gateway_openai
import msgspec
import pytest

from gateway import settings as settings_mod
from gateway.app import create_app
from gateway.errors import StartupError
from gateway.keys import GATEWAY
from gateway.settings import SettingsError, apply_env, build, read_file

# --------------------------------------------------------------------------- apply_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9000", 9000),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ('["a", "b"]', ["a", "b"]),
        ('{"x": 1}', {"x": 1}),
        ('"9000"', "9000"),  # JSON-quoted: stays a string
        ("null", None),
        ("127.0.0.1", "127.0.0.1"),  # not JSON: a plain string
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
        ("", ""),
        ("not json [", "not json ["),
    ],
)
def test_apply_env_reads_values_as_json_when_they_parse(value: str, expected: Any) -> None:
    out = apply_env({}, {"GATEWAY__SERVER__X": value})
    assert out == {"server": {"x": expected}}
    assert type(out["server"]["x"]) is type(expected)


def test_apply_env_nested_sections_lowercased_and_merged_with_file_values() -> None:
    raw = {"server": {"host": "0.0.0.0", "port": 1}, "providers": {"openai": {"base_url": "http://file"}}}
    env = {
        "GATEWAY__SERVER__PORT": "9001",
        "GATEWAY__PROVIDERS__OPENAI__BASE_URL": "http://env/v1",
        "GATEWAY__PROVIDERS__OTHER__BASE_URL": "http://other",
        "GATEWAY__Logging__Level": "debug",
        "GATEWAY_CONFIG": "/etc/gateway.toml",  # one underscore: not an override
        "GATEWAY__": "ignored",  # no keys
        "PATH": "/usr/bin",
    }
    out = apply_env(raw, env)
    assert out == {
        "server": {"host": "0.0.0.0", "port": 9001},
        "providers": {"openai": {"base_url": "http://env/v1"}, "other": {"base_url": "http://other"}},
        "logging": {"level": "debug"},
    }
    # A new dict: the file's values are not modified in place.
    assert raw == {"server": {"host": "0.0.0.0", "port": 1}, "providers": {"openai": {"base_url": "http://file"}}}


def test_apply_env_empty_segments_are_skipped() -> None:
    assert apply_env({}, {"GATEWAY____SERVER____PORT__": "7"}) == {"server": {"port": 7}}


def test_apply_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY__UPSTREAM__CONNECT_TIMEOUT", "2.5")
    assert apply_env({})["upstream"] == {"connect_timeout": 2.5}


def test_apply_env_refuses_to_descend_into_a_value() -> None:
    with pytest.raises(SettingsError) as info:
        apply_env({"server": 5}, {"GATEWAY__SERVER__PORT": "1"})
    assert "GATEWAY__SERVER__PORT" in str(info.value)
    assert "server is not a section" in str(info.value)


@pytest.mark.parametrize("order", ["section-first", "key-first"])
def test_apply_env_a_key_beats_its_whole_section_whatever_the_order(order: str) -> None:
    items = [("GATEWAY__SERVER", '{"host": "0.0.0.0", "port": 1}'), ("GATEWAY__SERVER__PORT", "2")]
    env = dict(items if order == "section-first" else items[::-1])
    assert apply_env({}, env) == {"server": {"host": "0.0.0.0", "port": 2}}


def test_env_values_validate_into_typed_settings() -> None:
    env = {
        "GATEWAY__SERVER__PORT": "9000",
        "GATEWAY__SERVER__SHUTDOWN_TIMEOUT": "2",
        "GATEWAY__UPSTREAM__READ_TIMEOUT": "1.5",
        "GATEWAY__SECURITY__GATEWAY_KEYS": '["k1", "k2"]',
        "GATEWAY__SECURITY__TRUSTED_HOSTS": "[]",
        "GATEWAY__PLUGINS__ENTRYPOINTS": "false",
        "GATEWAY__LOGGING__FORMAT": "console",
    }
    s = build(apply_env({}, env))
    assert s.server.port == 9000
    assert s.server.shutdown_timeout == 2.0 and isinstance(s.server.shutdown_timeout, float)
    assert s.upstream.read_timeout == 1.5
    assert s.security.gateway_keys == ["k1", "k2"]
    assert s.security.trusted_hosts == []
    assert s.plugins.entrypoints is False
    assert s.logging.format == "console"


def test_env_quoted_number_is_converted_for_an_int_field() -> None:
    assert build(apply_env({}, {"GATEWAY__SERVER__PORT": '"9000"'})).server.port == 9000


def test_env_wrong_type_error_names_the_path() -> None:
    with pytest.raises(SettingsError, match=r"\$\.server\.port"):
        build(apply_env({}, {"GATEWAY__SERVER__PORT": "abc"}))


# --------------------------------------------------------------------------- build


def test_build_embedded_defaults() -> None:
    s = build({})
    assert (s.server.host, s.server.port, s.server.workers) == ("127.0.0.1", 8787, 1)
    assert s.security.trusted_hosts is None  # loopback while listening on loopback: see test_outbound.py
    assert s.security.gateway_keys == []
    assert (s.logging.format, s.logging.level) == ("json", "info")
    assert s.plugins.entrypoints is True and s.plugins.disable == []
    assert s.providers == {} and s.sections == {}


def test_settings_are_frozen() -> None:
    s = build({})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"server": {"port": "abc"}}, "Expected `int`, got `str` - at `$.server.port`"),
        ({"server": {"port": 1.5}}, "Expected `int`, got `float` - at `$.server.port`"),
        ({"server": {"prot": 1}}, "unknown field `prot` - at `$.server`"),
        ({"server": 5}, "Expected `object`, got `int` - at `$.server`"),
        ({"logging": {"format": "xml"}}, "Invalid enum value 'xml' - at `$.logging.format`"),
        ({"logging": {"level": "verbose"}}, "Invalid enum value 'verbose' - at `$.logging.level`"),
        ({"security": {"trusted_hosts": "localhost"}}, "Expected `array | null`, got `str` - at `$.security.trusted_hosts`"),
        ({"plugins": {"disable": "openai"}}, "Expected `array`, got `str` - at `$.plugins.disable`"),
        ({"upstream": {"read_timeout": "soon"}}, "at `$.upstream.read_timeout`"),
        ({"providers": {"openai": 5}}, "Expected `object`, got `int` - at `$.providers"),
    ],
)
def test_build_errors_name_the_path(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        build(raw, {})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    limit: int = 10
    name: str = "x"


class _Required(msgspec.Struct, frozen=True):
    token: str


def test_build_plugin_sections_are_validated_and_defaulted() -> None:
    s = build({"quota": {"limit": "20"}}, {"quota": _Section, "other": _Section})
    assert s.sections["quota"] == _Section(limit=20)
    assert s.sections["other"] == _Section()  # absent: its defaults


@pytest.mark.parametrize(
    ("raw", "sections", "message"),
    [
        ({"quota": {"limit": "lots"}}, {"quota": _Section},
         "settings [quota]: Expected `int`, got `str` - at `$.limit`"),
        ({"quota": {"limmit": 1}}, {"quota": _Section}, "settings [quota]: Object contains unknown field `limmit`"),
        ({"quota": 5}, {"quota": _Section}, "settings [quota]: Expected `object`, got `int`"),
        ({}, {"auth": _Required}, "settings [auth]: Object missing required field `token`"),
        ({"servr": {"port": 1}}, {}, "unknown settings section [servr] (did you mean 'server'?)"),
        ({"qouta": {}}, {"quota": _Section}, "unknown settings section [qouta] (did you mean 'quota'?)"),
        ({"zzz": {}}, {}, "unknown settings section [zzz]"),
    ],
)
def test_build_section_errors(raw: dict[str, Any], sections: dict[str, type], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        build(raw, sections)
    assert message in str(info.value)


def test_build_reports_every_section_error_one_per_line() -> None:
    with pytest.raises(SettingsError) as info:
        build({"servr": {}, "lggging": {}, "quota": {"limit": "x"}}, {"quota": _Section})
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any("[servr]" in line and "'server'" in line for line in lines)
    assert any("[lggging]" in line and "'logging'" in line for line in lines)
    assert any(line.startswith("settings [quota]:") for line in lines)


def test_build_phase_one_keeps_unknown_sections_unchecked() -> None:
    s = build({"quota": {"anything": [1, 2]}, "server": {"port": 1}})
    assert s.sections == {"quota": {"anything": [1, 2]}}
    assert s.server.port == 1


def test_suggest() -> None:
    assert settings_mod.suggest("opnai", ["openai", "stability"]) == " (did you mean 'openai'?)"
    assert settings_mod.suggest("zzz", ["openai"]) == ""


# --------------------------------------------------------------------------- read_file


def test_read_file(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[providers.openai]\nbase_url = "http://x/v1"\n')
    assert read_file(path) == {
        "server": {"port": 9000, "host": "0.0.0.0"}, "providers": {"openai": {"base_url": "http://x/v1"}},
    }


def test_read_file_missing(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError, match=r"cannot read settings file .*nope\.toml: No such file"):
        read_file(tmp_path / "nope.toml")


def test_read_file_not_toml(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "bad.toml"
    path.write_text("[server\nport = = 1\n")
    with pytest.raises(SettingsError, match=r"bad\.toml: not valid TOML"):
        read_file(path)


# --------------------------------------------------------------------------- with plugins (phase two)


def test_provider_settings_from_env_reach_the_provider() -> None:
    raw = apply_env({}, {"GATEWAY__PROVIDERS__OPENAI__BASE_URL": "http://127.0.0.1:9/v1/"})
    app = create_app(raw, plugins=[gateway_openai], load_entrypoints=False)
    assert app[GATEWAY].registry.providers["openai"].base_url == "http://127.0.0.1:9/v1"


def test_unknown_provider_section_suggests_the_installed_one() -> None:
    with pytest.raises(StartupError) as info:
        create_app({"providers": {"opnai": {"base_url": "http://x"}}}, plugins=[gateway_openai], load_entrypoints=False)
    msg = str(info.value)
    assert "[providers.opnai]" in msg and "did you mean 'openai'" in msg and "installed providers: openai" in msg


def test_unknown_provider_setting_names_the_provider() -> None:
    with pytest.raises(StartupError) as info:
        create_app({"providers": {"openai": {"base_ur": "http://x"}}}, plugins=[gateway_openai], load_entrypoints=False)
    assert "settings [providers.openai]" in str(info.value)
    assert "base_ur" in str(info.value)


def test_unknown_section_is_a_startup_error_through_create_app() -> None:
    with pytest.raises(StartupError, match=r"unknown settings section \[servr\] \(did you mean 'server'\?\)"):
        create_app({"servr": {}}, load_entrypoints=False)


def test_plugins_disable_typo_is_a_startup_error():
    from gateway.app import create_app
    from gateway.errors import StartupError

    with pytest.raises(StartupError, match="did you mean 'route-fallback'"):
        create_app({"plugins": {"disable": ["route-fallbak"]}}, load_entrypoints=False)


def test_schema_includes_plugin_sections_and_the_config_object():
    from gateway import hookimpl
    from gateway.plugins import get_plugin_manager
    from gateway.schema import settings_schema

    class Quota(msgspec.Struct, forbid_unknown_fields=True):
        limit: int = 10

    class Plugin:
        @hookimpl
        def gateway_register_config_sections(self):
            return {"quota": Quota}

    schema = settings_schema(get_plugin_manager(load_entrypoints=False, extra=[gateway_openai, Plugin()]))
    props = schema["$defs"]["Settings"]["properties"]
    assert props["quota"] == {"$ref": "#/$defs/Quota"}
    assert schema["$defs"]["Quota"]["properties"]["limit"]["type"] == "integer"
    assert props["configs"]["additionalProperties"] == {"$ref": "#/$defs/NodeFields"}
    node = schema["$defs"]["NodeFields"]
    assert node["properties"]["targets"]["items"] == {"$ref": "#/$defs/NodeFields"}
    assert props["virtual_keys"]["additionalProperties"]["properties"]["provider"]["enum"] == ["openai"]
