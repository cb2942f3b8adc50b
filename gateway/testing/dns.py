"""A name resolver standing in for DNS in tests: names map to the addresses a test says.

Put one on the app before it starts (``gateway_services.resolver = StaticResolver(...)``)
to see what the gateway's address guard does with a name that resolves to an internal
address, to several addresses, or to a different address on each lookup (rebinding)::

    gateway_services.resolver = StaticResolver({"attacker.example": ["127.0.0.1"],
                                                "rebind.example": [["93.184.216.34"], ["10.0.0.1"]]})
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    """Answers from a table; a name maps to its addresses, or to a list of answers given
    in turn (the last one repeats).  An unknown name fails as DNS would."""

    def __init__(self, table: Mapping[str, Sequence[str] | Sequence[Sequence[str]]]) -> None:
        self.table = {name.lower(): list(answers) for name, answers in table.items()}
        #: Every name looked up, in order.
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        self.lookups.append(host)
        answers = self.table.get(host.lower().rstrip("."))
        if not answers:
            raise OSError(socket.EAI_NONAME, f"{host}: name not known")
        if isinstance(answers[0], str):
            current: Sequence[str] = answers  # type: ignore[assignment]
        else:
            current = answers.pop(0) if len(answers) > 1 else answers[0]  # type: ignore[assignment]
        out: list[ResolveResult] = []
        for address in current:
            ip = ipaddress.ip_address(address)
            out.append(ResolveResult(hostname=host, host=str(ip), port=port,
                                     family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                                     proto=0, flags=socket.AI_NUMERICHOST))
        return out

    async def close(self) -> None:
        pass
