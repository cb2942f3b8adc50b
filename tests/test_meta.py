"""Checks on the project itself: hooks documented and tested, defaults well-formed, modules import."""
from __future__ import annotations

import configparser
import inspect
import pathlib
import pkgutil
import subprocess
import sys
import tomllib

import pytest

import gateway
from gateway import hookspecs
import import_graph as imports
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


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_documents_its_parameters(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for param in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f":param {param}:" in doc, f"{hook} docstring does not document `{param}`"


def test_defaults_are_registered_by_module_path_and_overridable():
    pm = get_plugin_manager(load_entrypoints=False)
    for name in DEFAULT_PLUGINS:
        plugin = pm.get_plugin(name)
        # A module, or (when it keeps per-app state) an instance of the module's Plugin class.
        assert plugin is not None and getattr(plugin, "__name__", type(plugin).__module__) == name
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
    dists = {dist for _, dist, _ in builder.providers()}
    # Every plugin but the routing strategies, the cache backend and the log store is a provider.
    installed = {p.name for p in (ROOT / "plugins").iterdir() if (p / "setup.cfg").exists()
                 and not p.name.startswith(("gateway-route-", "gateway-cache-", "gateway-log-"))}
    assert dists == installed, "every provider plugin is on the page"
    assert (ROOT / "docs" / "providers.md").read_text() == builder.build(), "run: python docs/build_providers.py"


# -- layering: imports run one way -------------------------------------------------------


def test_no_function_local_imports_in_the_core():
    """Imports sit at the top of a module (where a reader sees what it depends on),
    except for optional dependencies."""
    found = [f"{use.path}:{use.line} {use.module}" for use in imports.core()
             if use.local and use.module.split(".")[0] not in imports.OPTIONAL]
    assert not found, "function-local imports:\n" + "\n".join(found)


def test_plugins_import_only_the_sdk():
    """A plugin depends on ``gateway.sdk`` (and its tests and fakes on ``gateway.testing``), nothing else."""
    found = []
    for use in imports.plugins():
        if use.module != "gateway" and not use.module.startswith("gateway."):
            continue
        allowed = use.module == "gateway.sdk" or (use.module.startswith("gateway.testing") and use.for_tests)
        if not allowed:
            found.append(f"{use.path}:{use.line} {use.module}")
    assert not found, "plugins importing the core beyond gateway.sdk:\n" + "\n".join(found)


def test_imports_run_one_way():
    """HTTP handlers -> engine -> endpoints -> provider SDK -> utilities: no module imports a
    layer above its own (type-only imports under TYPE_CHECKING aside)."""
    found = []
    for use in imports.core():
        if use.type_only or not use.module.startswith("gateway"):
            continue
        here, there = imports.layer(use.importer), imports.layer(use.module)
        if there > here:
            found.append(f"{use.path}:{use.line} {use.importer} ({imports.LAYERS[here]}) imports "
                         f"{use.module} ({imports.LAYERS[there]})")
    assert not found, "\n".join(found)


def test_no_import_cycles_in_the_core():
    """No circle of module-level imports in ``gateway/`` (type-only ones aside: they never run)."""
    cycles = imports.cycles(imports.graph(imports.core()))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# -- packaging: `make install` prints no warning -------------------------------------------


def _distributions() -> list[pathlib.Path]:
    """The core and every plugin distribution (the directories the Makefile installs)."""
    return [ROOT, *sorted(p for p in (ROOT / "plugins").glob("gateway-*") if p.is_dir())]


def _mapping(value: str) -> dict[str, str]:
    """A setup.cfg ``key = value`` list (``package_dir``) as a dict."""
    lines = [ln.strip() for ln in value.strip().splitlines() if ln.strip()]
    return {k.strip(): v.strip() for k, v in (ln.split("=", 1) for ln in lines)}


@pytest.mark.parametrize("project", _distributions(), ids=lambda p: p.name)
def test_every_distribution_installs_editable_without_setuptools_warnings(project: pathlib.Path):
    """What ``pip install -e`` needs to stay quiet, read statically (the suite runs no pip):

    - ``package_dir = =.`` in ``[options]``: with the project directory mapped as the import root,
      setuptools installs an editable project with a plain ``.pth`` file; without it, a flat
      layout gets a meta-path finder, and every install prints "BuildBackendWarning: Editable
      installation ... Please be careful with folders in your working directory with the same
      name as your package";
    - the metadata in ``setup.cfg`` only: with a ``[project]`` table in ``pyproject.toml`` next to
      it, setuptools ignores one of the two, and says so;
    - ``license`` as an SPDX expression and no ``License ::`` classifier (deprecated, with a
      warning, since setuptools 77);
    - setuptools >= 64 (editable wheels, PEP 660) as the build backend, and no ``setup.py``;
    - every file a ``file:`` value names (``long_description = file: README.md``) present.
    """
    assert not (project / "setup.py").exists()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    build = pyproject["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"
    [setuptools_req] = [r for r in build["requires"] if r.startswith("setuptools")]
    assert setuptools_req.replace(" ", "") in ("setuptools>=64", "setuptools>=65"), setuptools_req
    assert "project" not in pyproject, "metadata belongs in setup.cfg"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(project / "setup.cfg")
    options = cfg["options"]
    assert _mapping(options.get("package_dir", "")) == {"": "."}, (
        f"{project.name}/setup.cfg: add `package_dir =` with the line `    =.` to [options]")
    assert options.get("packages") == "find:"
    name = cfg["metadata"]["name"]
    own = name.replace("-", "_")
    include = [p.strip() for p in cfg["options.packages.find"]["include"].replace("\n", ",").split(",") if p.strip()]
    assert include == [own, f"{own}.*"], "only the distribution's own package (not tests/) goes in it"
    assert cfg["metadata"].get("license") == "Apache-2.0"
    assert "License ::" not in cfg["metadata"].get("classifiers", "")
    # `file:` values that name a missing file are a warning each time the metadata is read.
    for key, value in cfg["metadata"].items():
        if value.startswith("file:"):
            for name in value[len("file:"):].split(","):
                assert (project / name.strip()).is_file(), f"{project.name}/setup.cfg {key}: {name.strip()} is missing"
