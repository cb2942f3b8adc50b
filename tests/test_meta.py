"""Checks on the project itself: hooks documented and tested, defaults well-formed, modules import."""
from __future__ import annotations

import inspect
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import gateway
from gateway import hookspecs
from gateway.errors import StartupError
from gateway.plugins import DEFAULT_PLUGINS, ESSENTIAL_PLUGINS, get_plugin_manager

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if name.startswith("gateway_") and callable(fn))


def test_hooks_found():
    assert "gateway_route" in HOOKS and len(HOOKS) >= 14


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    text = (ROOT / "tests" / "test_hooks.py").read_text()
    assert f"def test_hook_{hook}(" in text


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for word in ("Mode:", "Async:", "Returns:"):
        assert word in doc, f"{hook} docstring lacks {word!r}"
    signature = f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"
    assert signature in (ROOT / "README.md").read_text(), f"README hook table lacks {signature}"


def test_defaults_are_registered_by_module_path_and_overridable():
    pm = get_plugin_manager(load_entrypoints=False)
    for name in DEFAULT_PLUGINS:
        plugin = pm.get_plugin(name)
        assert plugin is not None and plugin.__name__ == name
        for caller in pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not caller.name.startswith("gateway_register_"):
                    assert impl.trylast, f"{name}.{caller.name} should be trylast so plugins can override it"


@pytest.mark.parametrize("name", sorted(ESSENTIAL_PLUGINS))
def test_essential_defaults_cannot_be_disabled(name):
    with pytest.raises(StartupError, match="essential"):
        get_plugin_manager(load_entrypoints=False, block=[name])


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.")]
    return ["gateway", *names, "gateway_openai", "gateway_openai.provider"]


@pytest.mark.parametrize("module", _modules())
def test_module_imports_cleanly(module):
    proc = subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_providers_page_is_built_from_the_plugin_readmes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_providers", ROOT / "docs" / "build_providers.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    dists = {dist for _, dist in builder.PROVIDERS}
    installed = {p.name for p in (ROOT / "plugins").iterdir() if (p / "setup.cfg").exists() and "route" not in p.name
                 and "cache" not in p.name}
    assert dists == installed, "every provider plugin is on the page"
    assert (ROOT / "docs" / "providers.md").read_text() == builder.build(), "run: python docs/build_providers.py"
