"""The first-party plugins the core's own tests register."""
from __future__ import annotations

import gateway_openai
import gateway_route_conditional
import gateway_route_fallback
import gateway_route_loadbalance
import gateway_route_single
import gateway_stability_ai

FIRST_PARTY = [
    gateway_openai, gateway_route_single, gateway_route_fallback, gateway_route_loadbalance, gateway_route_conditional,
    gateway_stability_ai,
]
