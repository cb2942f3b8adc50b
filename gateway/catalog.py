"""Portkey's model catalog: a provider slug (``@openai-prod``) is a virtual key's name.

Apps written for Portkey 2.x name the provider in the model (``"model":
"@openai-prod/gpt-image-1"``), in a config target (``"provider": "@openai-prod"``) or in
``x-portkey-provider: @openai-prod``.  Each means: the virtual key ``openai-prod``, and
(in a model) the model after the slash.  Names that only look like slugs are model names
of their own and are left alone: Cloudflare Workers AI's ``@cf/...`` and ``@hf/...``.
"""
from __future__ import annotations

import re

__all__ = ["model_slug", "provider_slug"]

#: Model names with a leading ``@`` that are not slugs.
FOREIGN = ("@cf/", "@hf/")
_SLUG = re.compile(r"@([A-Za-z0-9][A-Za-z0-9_.:-]*)")


def provider_slug(value: str) -> str | None:
    """``"@openai-prod"`` -> ``"openai-prod"``; None for anything else."""
    m = _SLUG.fullmatch(value)
    return m.group(1) if m else None


def model_slug(value: object) -> tuple[str, str] | None:
    """``"@openai-prod/gpt-image-1"`` -> ``("openai-prod", "gpt-image-1")``; None for a model
    name without a slug (``@cf/...`` and ``@hf/...`` included)."""
    if not isinstance(value, str) or not value.startswith("@") or value.startswith(FOREIGN):
        return None
    slug, sep, model = value.partition("/")
    name = provider_slug(slug)
    if not sep or name is None or not model:
        return None
    return name, model
