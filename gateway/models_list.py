"""``GET /v1/models`` without a provider: the models the caller can reach, with what each
takes — the capability registry a client can read (OpenAI's list shape, one entry per
model per provider, and per provider slug).

With ``x-portkey-provider``, ``x-portkey-virtual-key`` or ``x-portkey-config`` the request
is the provider's own ``/v1/models`` (passthrough) instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS

if TYPE_CHECKING:  # pragma: no cover
    from gateway.provider import ModelCapabilities, Provider
    from gateway.services import Services

__all__ = ["catalog"]


def catalog(services: Services, principal: Any) -> dict[str, Any]:
    """The list for ``principal`` (a gateway key's scope narrows providers and virtual keys)."""
    providers = getattr(principal, "providers", None)
    virtual_keys = getattr(principal, "virtual_keys", None)
    data: list[dict[str, Any]] = []
    for name, provider in sorted(services.registry.providers.items()):
        if providers is None or name in providers:
            data.extend(_entries(provider, name, None))
    for vk_name, vk in sorted(services.virtual_keys.items()):
        provider = services.registry.providers.get(vk.provider)
        if provider is None or (virtual_keys is not None and vk_name not in virtual_keys):
            continue
        if providers is not None and vk.provider not in providers:
            continue
        data.extend(_entries(provider, f"@{vk_name}/", vk_name))
    return {"object": "list", "data": data}


def _entries(provider: Provider, prefix: str, virtual_key: str | None) -> list[dict[str, Any]]:
    caps = provider.capabilities
    names = sorted({*caps.models, *caps.edit_models})
    out = []
    for model in names:
        generation = caps.models.get(model) if IMAGES_GENERATIONS in caps.endpoints else None
        edit = caps.edit_models.get(model) if IMAGES_EDITS in caps.endpoints else None
        entry: dict[str, Any] = {
            "id": f"{prefix}{model}" if virtual_key else model, "object": "model", "owned_by": provider.name,
            "provider": provider.name,
            "capabilities": {"generations": _caps(generation) if generation else None,
                             "edits": _caps(edit, edit=True) if edit else None,
                             # `stream: true` works with every provider: the gateway streams what
                             # a provider answers whole; `native_stream` says the provider streams.
                             "stream": True,
                             "native_stream": bool(caps.streams),
                             "default": model in (caps.default_model, caps.default_edit_model)},
        }
        if virtual_key:
            entry["virtual_key"] = virtual_key
        out.append(entry)
    return out


def _caps(mc: ModelCapabilities, edit: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"max_n": mc.max_images, "images_per_call": mc.max_n}
    if mc.sizes:
        out["sizes"] = list(mc.sizes)
    if mc.aspect_ratios:
        out["aspect_ratios"] = list(mc.aspect_ratios)
    if mc.min_side or mc.max_side:
        out["sides"] = {"min": mc.min_side, "max": mc.max_side, "multiple": mc.side_multiple}
    if mc.qualities:
        out["qualities"] = list(mc.qualities)
    if mc.styles:
        out["styles"] = list(mc.styles)
    if mc.response_formats:
        out["response_formats"] = list(mc.response_formats)
    if edit:
        out.update(input_images=mc.input_images, mask=mc.mask, needs_mask=mc.needs_mask)
    return out
