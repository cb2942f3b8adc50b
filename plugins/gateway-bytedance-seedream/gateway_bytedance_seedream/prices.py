"""BytePlus ModelArk's prices for the Seedream models (USD), as plain data the core prices calls with.

ModelArk bills Seedream per generated image, one price per model whatever the size or tier; a
group generation (``sequential_image_generation``) is billed for each image it made, and the
reference images of an edit are not billed apart.  Rows match BytePlus's model IDs
(``seedream-4-5-251128``): Volcengine Ark (``doubao-seedream-...``, ``cn-beijing``) bills in CNY
at prices of its own, and an ``ep-...`` endpoint's model is unknown, so neither is priced.
ModelArk's answer counts the images (``usage.generated_images``), not money: every cost is an
estimate.  Sources and dates: README, "Prices".
"""
from __future__ import annotations

from gateway.sdk import PerImage, Price

PRICES: tuple[Price, ...] = (
    PerImage(model="seedream-4-0-*", usd=0.03),
    PerImage(model="seedream-4-5-*", usd=0.04),
    # Seedream 5.0 lite: BytePlus's ID seedream-5-0-260128 (and a -lite- spelling); another 5.0
    # variant (a "pro") would have a price of its own, so the rows match no more than these.
    PerImage(model="seedream-5-0-lite*", usd=0.035),
    PerImage(model="seedream-5-0-[0-9]*", usd=0.035),
)
