"""Stability AI's prices (USD), as plain data the core prices calls with.

Stability bills credits per successful generation, one credit being $0.01, a fixed number per
model whatever the size.  The ``sd3-*`` names are served by their SD 3.5 equivalents (and the
``sd3`` endpoint without a model by SD 3.5 Large), so they cost the same.  Not priced (not
published in a source checked): the v1 engines (priced by steps), SD 3.5 Flash and the edit
services (inpaint, erase, outpaint, search-and-replace, ...).  Sources and dates: README, "Prices".
"""
from __future__ import annotations

from gateway.sdk import PerImage, Price

#: USD per credit.
CREDIT = 0.01

#: Credits per image, by model name (the gateway's names and Stability's).
CREDITS = {
    ("ultra", "stable-image-ultra"): 8,
    ("sd3", "sd3.5-large", "sd3-large"): 6.5,
    ("sd3.5-large-turbo", "sd3-large-turbo"): 4,
    ("sd3.5-medium", "sd3-medium"): 3.5,
    ("core", "stable-image-core"): 3,
}

PRICES: tuple[Price, ...] = tuple(
    PerImage(model=name, usd=round(credits * CREDIT, 6)) for names, credits in CREDITS.items() for name in names
)
