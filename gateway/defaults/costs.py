"""Built-in plugin: the cost of each request (:mod:`gateway.pricing`, docs/costs.md).

It builds the app's price book from every provider's ``prices`` and the ``[prices]``
settings section it registers, where an operator adds prices or replaces a provider's
(a negotiated rate)::

    [prices.openai."gpt-image-1"]
    per_image = { "1024x1024/low" = 0.011, "1024x1024/medium" = 0.042 }
    output_image = 40.0            # USD per million output image tokens (exact, from `usage`)

    [prices.together-ai."black-forest-labs/FLUX.1-schnell"]
    per_megapixel = 0.0027

The endpoints then add each billed call's cost to the request (``ctx.record.cost``); the
answer's ``x-gateway-cost`` header, the log line, the metrics and the key budgets read it.
Disabling this plugin (``plugins.disable``) turns costs off.
"""
from __future__ import annotations

from typing import Annotated, Any

import msgspec

from gateway import hookimpl
from gateway.errors import StartupError
from gateway.pricing import PerImage, PerMegapixel, PerToken, Price, PriceBook, Prices
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Base, Settings, suggest

USD = Annotated[float, msgspec.Meta(ge=0)]


class ModelPrice(Base):
    """``[prices.<provider>.<model>]``: what one model (a name, or an ``fnmatch`` pattern such
    as ``"gpt-image-2*"``) costs, in USD.  A model named here is priced by these settings
    alone, not by the provider's own table."""

    #: Per image made: one price, or a table by ``"<size>"`` or ``"<size>/<quality>"``
    #: (``*`` matches anything: ``"*/high"``).
    per_image: USD | dict[str, USD] | None = None
    #: Per input image an edit sends (with ``per_image``).
    per_input_image: USD = 0.0
    #: Per megapixel (1024x1024 pixels) of each image made; the first one at
    #: ``first_megapixel`` when set; each started megapixel billed whole with ``round_up_megapixels``.
    per_megapixel: USD | None = None
    first_megapixel: USD | None = None
    round_up_megapixels: bool = False
    #: Per megapixel of an edit's input images (with ``per_megapixel``).
    per_input_megapixel: USD = 0.0
    #: Per million tokens of the answer's ``usage``: exact costs.
    input_text: USD | None = None
    input_image: USD | None = None
    output_image: USD | None = None
    output_text: USD | None = None


#: ``[prices]``: provider slug -> model (or pattern) -> its prices.
PricesSection = dict[str, dict[str, ModelPrice]]


def rows(model: str, price: ModelPrice) -> Prices:
    """One ``[prices.<provider>.<model>]`` table as price rows (tokens first)."""
    out: list[Price] = []
    tokens = {k: getattr(price, k) for k in ("input_text", "input_image", "output_image", "output_text")}
    if any(v is not None for v in tokens.values()):
        out.append(PerToken(model=model, **tokens))
    if isinstance(price.per_image, dict):
        for key, usd in price.per_image.items():
            size, _, quality = key.partition("/")
            out.append(PerImage(model=model, usd=usd, size=size or "*", quality=quality or "*",
                                input_image=price.per_input_image))
    elif price.per_image is not None:
        out.append(PerImage(model=model, usd=price.per_image, input_image=price.per_input_image))
    if price.per_megapixel is not None or price.first_megapixel is not None:
        out.append(PerMegapixel(model=model, usd=price.per_megapixel, first=price.first_megapixel,
                                round_up=price.round_up_megapixels, input=price.per_input_megapixel))
    return tuple(out)


def overrides(section: PricesSection, providers: Any) -> dict[str, Prices]:
    """The settings' rows by provider; every problem (an unknown provider, a table that names
    no price) in one StartupError."""
    errors: list[str] = []
    out: dict[str, Prices] = {}
    for provider, models in section.items():
        if provider not in providers:
            errors.append(f"settings [prices.{provider}]: no provider {provider!r} is installed"
                          f"{suggest(provider, providers)}")
            continue
        found: list[Price] = []
        for model, price in models.items():
            more = rows(model, price)
            if not more:
                errors.append(f"settings [prices.{provider}.\"{model}\"]: names no price (per_image, per_megapixel, "
                              "first_megapixel, or a token price)")
            found.extend(more)
        out[provider] = tuple(found)
    if errors:
        raise StartupError("\n".join(errors))
    return out


@hookimpl
def gateway_register_config_sections() -> dict[str, Any]:
    return {"prices": PricesSection}


@hookimpl(trylast=True)
def gateway_configure(settings: Settings, registry: Registry, services: Services) -> None:
    section: PricesSection = settings.sections.get("prices") or {}
    services.prices = PriceBook(registry.providers, overrides(section, registry.providers))
