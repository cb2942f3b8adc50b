"""Build docs/providers.md from the provider plugins' READMEs.

The providers are the installed ``gateway`` entry points that register one (found, not listed
here).  Each plugin's README is the source of its ``Auth summary:`` line and of its
``## Parameter mapping``, ``## Sizes and limits``, ``## Edits and streaming`` and ``## Not
supported`` sections; this page gathers them, with a table of which providers edit and how each
streams, read from the providers' declared capabilities.  Run ``python docs/build_providers.py``
after editing a README (a test fails while the page is stale).
"""
from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

from gateway.sdk import IMAGES_EDITS

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Parameter mapping", "Sizes and limits", "Edits and streaming", "Not supported")

HEADER = """# Providers

Every provider is its own plugin distribution under `plugins/`; this page gathers, per provider, how
OpenAI's parameters map onto its API, the sizes and limits per model, and what it does not support.
It is built from the plugins' READMEs by `python docs/build_providers.py`.

What every provider shares (the core does it, see the README's "One answer shape"): the answer
`{"created", "data": [{"b64_json"|"url", "revised_prompt"?}], "provider"}`; `response_format` both
ways; `n` above a model's per-call limit as parallel calls merged in order; lenient mapping reported in
`x-portkey-adjusted-params`, or a 400 with `x-portkey-strict-params: true`; content-policy refusals as
`content_policy_violation`; malformed answers as a 502.

`stream: true` works with every provider: *native* relays the provider's own Server-Sent Events as
they arrive; *synthesized* means the gateway sends one `...completed` event per image of the whole
answer, with keep-alive comments while the provider works.

| slug | plugin | auth | edits | streaming |
|---|---|---|---|---|
"""


def section(text: str, title: str) -> str:
    """The body of ``## title`` (up to the next ``## ``), headings one level down."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise SystemExit(f"missing section '## {title}'")
    return re.sub(r"^### ", "#### ", match.group(1).strip(), flags=re.M)


def providers() -> list[tuple[str, str, Any]]:
    """``(slug, distribution, provider class)`` of every installed provider plugin, by slug."""
    found = []
    for ep in importlib.metadata.entry_points(group="gateway"):
        register = getattr(ep.load(), "gateway_register_providers", None)
        if register is not None and ep.dist is not None:
            found.extend((cls.name, ep.dist.name, cls) for cls in register())
    return sorted(found, key=lambda item: item[:2])


def abilities(cls: Any) -> str:
    """The table cells of what a provider declares: whether it edits, how it streams."""
    caps = cls.capabilities
    edits = "yes" if IMAGES_EDITS in caps.endpoints else "—"
    return f"{edits} | {'native' if caps.streams else 'synthesized'}"


def auth(text: str, dist: str) -> str:
    match = re.search(r"^Auth summary: (.+?)\.?$", text, re.M)
    if match is None:
        raise SystemExit(f"plugins/{dist}/README.md: missing its 'Auth summary: ...' line")
    return match.group(1)


def build() -> str:
    plugins = [(slug, dist, cls, (ROOT / "plugins" / dist / "README.md").read_text())
               for slug, dist, cls in providers()]
    out = [HEADER, *(f"| `{slug}` | `{dist}` | {auth(text, dist)} | {abilities(cls)} |\n"
                     for slug, dist, cls, text in plugins)]
    for slug, dist, _, text in plugins:
        out.append(f"\n## `{slug}`\n\nPlugin: [`plugins/{dist}`](../plugins/{dist}/README.md).\n")
        for title in SECTIONS:
            out.append(f"\n### {title}\n\n{section(text, title)}\n")
    return "".join(out)


if __name__ == "__main__":
    target = ROOT / "docs" / "providers.md"
    target.write_text(build())
    sys.stdout.write(f"wrote {target.relative_to(ROOT)}\n")
