"""The demo provider: OpenAI's images API as the demo's own service (:mod:`gateway.demo.api`)
speaks it, declared like any provider plugin (it imports :mod:`gateway.sdk` only)."""
from __future__ import annotations

from gateway.demo import api
from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Capabilities,
    ModelCapabilities,
    OpenAICompatibleProvider,
    PerImage,
)

_MODEL = ModelCapabilities(sizes=api.SIZES, max_n=api.MAX_N, qualities=api.QUALITIES,
                           response_formats=("b64_json",))
_EDIT = ModelCapabilities(sizes=api.SIZES, max_n=api.MAX_N, qualities=api.QUALITIES,
                          response_formats=("b64_json",), input_images=api.MAX_INPUT_IMAGES, mask=True)


class DemoProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: demo``: real PNGs of the prompt, no key needed, only under ``gateway demo``."""

    name = "demo"
    #: ``gateway demo`` sets ``[providers.demo] base_url`` to the address its service listens on.
    default_base_url = "http://127.0.0.1:8788/v1"
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "response_format", "user"}),
        models={m: _MODEL for m in api.MODELS},
        families=((f"{api.MODEL_PREFIX}*", _MODEL),),
        default_model=api.MODELS[0],
        edit_models={m: _EDIT for m in api.MODELS},
        edit_families=((f"{api.MODEL_PREFIX}*", _EDIT),),
        default_edit_model=api.MODELS[0],
    )
    #: A made-up price, so the demo shows costs: one US cent per image (an estimate: no token prices).
    prices = (PerImage(model=f"{api.MODEL_PREFIX}*", usd=0.01),)
