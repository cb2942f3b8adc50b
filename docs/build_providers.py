"""Build docs/providers.md from the provider plugins' READMEs.

Each plugin's README is the source of its ``## Parameter mapping``, ``## Sizes and limits`` and
``## Not supported`` sections; this page gathers them.  Run ``python docs/build_providers.py``
after editing a README (a test fails while the page is stale).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Slug, distribution directory, in the order the page lists them.
PROVIDERS = [
    ("openai", "gateway-openai"), ("azure-openai", "gateway-azure-openai"), ("stability-ai", "gateway-stability-ai"),
    ("bedrock", "gateway-bedrock"), ("segmind", "gateway-segmind"), ("together-ai", "gateway-together-ai"),
    ("replicate", "gateway-replicate"),
]
SECTIONS = ("Parameter mapping", "Sizes and limits", "Not supported")

HEADER = """# Providers

Every provider is its own plugin distribution under `plugins/`; this page gathers, per provider, how
OpenAI's parameters map onto its API, the sizes and limits per model, and what it does not support.
It is built from the plugins' READMEs by `python docs/build_providers.py`.

What every provider shares (the core does it, see the README's "One answer shape"): the answer
`{"created", "data": [{"b64_json"|"url", "revised_prompt"?}], "provider"}`; `response_format` both
ways; `n` above a model's per-call limit as parallel calls merged in order; lenient mapping reported in
`x-portkey-adjusted-params`, or a 400 with `x-portkey-strict-params: true`; content-policy refusals as
`content_policy_violation`; malformed answers as a 502.

| slug | plugin | auth |
|---|---|---|
| `openai` | `gateway-openai` | `Authorization: Bearer` |
| `azure-openai` | `gateway-azure-openai` | `api-key`, or an Entra token as `Authorization: Bearer` |
| `stability-ai` | `gateway-stability-ai` | `Authorization: Bearer` |
| `bedrock` | `gateway-bedrock` | SigV4 (botocore), or a Bedrock API key as `Authorization: Bearer` |
| `segmind` | `gateway-segmind` | `x-api-key` |
| `together-ai` | `gateway-together-ai` | `Authorization: Bearer` |
| `replicate` | `gateway-replicate` | `Authorization: Bearer` |
"""


def section(text: str, title: str) -> str:
    """The body of ``## title`` (up to the next ``## ``), headings one level down."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise SystemExit(f"missing section '## {title}'")
    return re.sub(r"^### ", "#### ", match.group(1).strip(), flags=re.M)


def build() -> str:
    out = [HEADER]
    for slug, dist in PROVIDERS:
        text = (ROOT / "plugins" / dist / "README.md").read_text()
        out.append(f"\n## `{slug}`\n\nPlugin: [`plugins/{dist}`](../plugins/{dist}/README.md).\n")
        for title in SECTIONS:
            out.append(f"\n### {title}\n\n{section(text, title)}\n")
    return "".join(out)


if __name__ == "__main__":
    target = ROOT / "docs" / "providers.md"
    target.write_text(build())
    sys.stdout.write(f"wrote {target.relative_to(ROOT)}\n")
