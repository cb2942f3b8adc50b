"""The floor the gateway is compared with: a minimal aiohttp forwarder.

No hooks, no config, no logging: every ``/v1/...`` request goes to the same
path on ``--upstream`` with the client's body and headers (minus hop-by-hop
ones), and the answer is streamed back chunk by chunk, the way the gateway
relays it.  ``run.py --reference`` measures it next to the gateway on the same
machine and cores, so the gateway's own overhead is the difference.

Run ``python reference_forwarder.py --upstream http://127.0.0.1:N --port M``.
"""
from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

DROP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"})
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def forward(request: web.Request) -> web.StreamResponse:
    """Send the request to the same path upstream; stream the answer back."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP}
    headers["Accept-Encoding"] = "identity"
    body = await request.read()
    url = request.app["upstream"] + request.path_qs
    async with request.app[SESSION].request(request.method, url, headers=headers, data=body,
                                             auto_decompress=False) as up:
        out_headers = {k: v for k, v in up.headers.items() if k.lower() not in DROP}
        resp = web.StreamResponse(status=up.status, headers=out_headers)
        if up.content_length is not None:
            resp.content_length = up.content_length
        await resp.prepare(request)
        async for chunk, _ in up.content.iter_chunks():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def ready(request: web.Request) -> web.Response:
    """Readiness probe, like the gateway's."""
    return web.json_response({"status": "ready"})


async def session_ctx(app: web.Application):  # noqa: ANN201
    """One client session for the app's lifetime."""
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
    yield
    await app[SESSION].close()


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="base URL of the upstream, without /v1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["upstream"] = args.upstream.rstrip("/")
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/readyz", ready)
    app.router.add_route("*", "/v1/{tail:.*}", forward)
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
