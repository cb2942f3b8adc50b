"""What ``gateway demo`` prints when it is listening: where things are, and requests to paste.

The curl and ``openai`` SDK examples are the ones the demo's tests run, as printed.
"""
from __future__ import annotations

import json

#: The request of the examples.
PROMPT = "a lighthouse at dawn"
MODEL = "demo-1"
#: The line the banner ends with (tests read the output up to it).
LAST_LINE = "Ctrl-C stops the demo."


def base_url(host: str, port: int) -> str:
    """``http://host:port`` as a person opens it: a wildcard address as loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def banner(url: str, *, latency: float, fail_rate: float, ui: bool, logs: bool, metrics: bool,
           admin_key: str | None) -> str:
    """The text printed once the gateway listens on ``url`` (``http://host:port``): ``ui`` and
    ``logs`` say whether the web UI and ``GET /v1/logs`` are there behind an admin key,
    ``metrics`` whether ``/metrics`` is; ``admin_key`` is the key made for this run (None: the
    operator's own)."""
    body = json.dumps({"model": MODEL, "prompt": PROMPT, "size": "1024x1024", "response_format": "url"})
    lines = [
        "gateway demo: the gateway with a built-in image provider that needs no key",
        "(x-portkey-provider: demo; it draws the prompt on a PNG).",
        "",
        f"  API       {url}/v1",
    ]
    key = admin_key if admin_key is not None else "the one your settings name"
    if ui:
        lines += [f"  Web UI    {url}/ui   (admin key: {key})"]
    if logs:
        lines += [f"  Logs      {url}/v1/logs   (admin key: {key})"]
    if metrics:
        lines += [f"  Metrics   {url}/metrics"]
    lines += [
        "",
        f"Each call takes about {latency:g} s (--latency)."
        + (f" {fail_rate:.0%} of calls fail with a 503 (--fail-rate)." if fail_rate > 0 else "")
        + " A prompt with [fail] fails, one with [refuse] is refused.",
        "",
        "curl:",
        "",
        f"  curl {url}/v1/images/generations \\",
        '    -H "Content-Type: application/json" \\',
        '    -H "x-portkey-provider: demo" \\',
        f"    -d '{body}'",
        "",
        "The openai SDK (pip install openai):",
        "",
        "  from openai import OpenAI",
        f'  client = OpenAI(base_url="{url}/v1", api_key="demo", default_headers={{"x-portkey-provider": "demo"}})',
        f'  image = client.images.generate(model="{MODEL}", prompt="{PROMPT}", n=2, response_format="url")',
        "  print(image.data[0].url)",
        "",
        "An edit (any PNG or JPEG of yours):",
        "",
        f'  curl {url}/v1/images/edits -H "x-portkey-provider: demo" \\',
        '    -F image=@photo.png -F prompt="add a red hat" -F response_format=url',
        "",
        LAST_LINE,
    ]
    return "\n".join(lines) + "\n"
