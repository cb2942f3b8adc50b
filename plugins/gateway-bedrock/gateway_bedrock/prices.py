"""Amazon Bedrock's prices for the image models this plugin declares: none confirmed.

Bedrock bills an image model per image generated, by model, region, resolution tier and
quality (Nova Canvas, Titan) or steps (SDXL).  AWS's price table (aws.amazon.com/bedrock/pricing,
drawn by the page's script) could not be read in a current copy, Titan Image Generator v2 and
Nova Canvas are past their end-of-life dates, and a Legacy model's price may rise in its
extended-access period: no row is shipped, so a Bedrock request's cost is unknown unless the
settings price it (``[prices.bedrock."<model>"]``; a pattern such as
``"*stability.stable-image-core-v1:1"`` also matches the region-prefixed IDs).  README, "Prices",
lists what was found and where.
"""
from __future__ import annotations

from gateway.sdk import Price

PRICES: tuple[Price, ...] = ()
