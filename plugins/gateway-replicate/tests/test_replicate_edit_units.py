"""Replicate edits in process: the create request ``build_edit`` makes per edit model, the
form's text typed for the model's schema, refusals, and the Files API detour of ``generate``
for large files (a scripted stand-in for the core's Upstream, no socket)."""
from __future__ import annotations

import base64
from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest
from multidict import CIMultiDict

from gateway.sdk import IMAGES_EDITS, Answer, BadParam, MalformedAnswer, UpstreamRequest
from gateway.testing import PNG_1X1, Recorded, answer, make_attempt
from gateway.sdk import AFTERWARDS_TIMEOUT
from gateway_replicate.provider import INLINE_LIMIT, ReplicateProvider
from gateway_replicate.testing import form_parts

BASE = "https://api.replicate.com/v1"
KONTEXT = "black-forest-labs/flux-kontext-pro"
IMAGES = [PNG_1X1 + bytes([i]) * 32 for i in range(3)]
MASK = PNG_1X1 + b"mask"
LARGE = PNG_1X1 + b"L" * INLINE_LIMIT
DONE = {"id": "p1", "status": "succeeded", "output": "https://replicate.delivery/xezq/p1/out.png"}
HOSTED = {"id": "f1", "urls": {"get": "https://api.replicate.com/v1/files/f1"}}


def uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def edit(body: dict[str, Any], images: list[bytes], mask: bytes | None = None, **kw: Any) -> Any:
    attempt = make_attempt(ReplicateProvider, endpoint=IMAGES_EDITS, body={"prompt": "add a hat", **body},
                           images=images, mask=mask, api_key="r8_unit", **kw)
    assert attempt.plan is not None
    attempt.upstream = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    return attempt


def sent_input(attempt: Any) -> dict[str, Any]:
    return msgspec.json.decode(attempt.upstream.body)["input"]


class _Response:
    status = 204

    def release(self) -> None:
        pass


class ScriptedUpstream:
    """The Upstream ``generate`` uses: ``exchange`` answers from ``script`` in order,
    ``send`` (clean-ups) answers 204; spawned work is kept to run by hand."""

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.sent: list[UpstreamRequest] = []
        self.timeouts: list[float | None] = []
        self.spawned: list[Coroutine[Any, Any, Any]] = []

    async def exchange(self, req: UpstreamRequest, *, timeout: float | None = None) -> Answer:
        self.sent.append(req)
        return self.script.pop(0)

    async def send(self, req: UpstreamRequest, *, timeout: float | None = None) -> Any:
        self.sent.append(req)
        self.timeouts.append(timeout)
        return _Response()

    async def read_body(self, resp: Any, limit: int | None = None) -> bytes:
        return b""

    async def sleep(self, seconds: float) -> None:
        pass

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.spawned.append(coro)


async def run(attempt: Any, upstream: ScriptedUpstream) -> Any:
    return await attempt.provider.generate(attempt, attempt.plan.parts[0], upstream)


# -- the create request per edit model ----------------------------------------------------

def test_kontext_create_request():
    attempt = edit({"model": KONTEXT, "size": "1536x1024", "seed": "3", "safety_tolerance": "2",
                    "output_format": "jpg"}, IMAGES[:1])
    req = attempt.upstream
    assert (req.method, req.url) == ("POST", f"{BASE}/models/{KONTEXT}/predictions")
    assert req.headers["Authorization"] == "Bearer r8_unit" and req.headers["Prefer"] == "wait=60"
    assert sent_input(attempt) == {"prompt": "add a hat", "aspect_ratio": "3:2", "seed": 3, "safety_tolerance": 2,
                                   "output_format": "jpg", "input_image": uri(IMAGES[0])}


def test_kontext_dev_takes_its_own_numbers_and_booleans():
    attempt = edit({"model": "black-forest-labs/flux-kontext-dev", "guidance": "2.5", "num_inference_steps": "28",
                    "go_fast": "false", "output_format": "webp"}, IMAGES[:1])
    assert sent_input(attempt) == {"prompt": "add a hat", "guidance": 2.5, "num_inference_steps": 28,
                                   "go_fast": False, "output_format": "webp", "input_image": uri(IMAGES[0])}


def test_list_models_keep_the_order_sent_and_fill_takes_the_mask():
    assert sent_input(edit({"model": "google/nano-banana"}, IMAGES))["image_input"] == [uri(b) for b in IMAGES]
    fill = sent_input(edit({"model": "black-forest-labs/flux-fill-pro"}, IMAGES[:1], MASK))
    assert (fill["image"], fill["mask"]) == (uri(IMAGES[0]), uri(MASK))


def test_a_split_moves_a_text_seed_on_per_prediction():
    attempt = make_attempt(ReplicateProvider, endpoint=IMAGES_EDITS, images=IMAGES[:1],
                           body={"prompt": "a hat", "model": KONTEXT, "n": 3, "seed": "10"})
    assert attempt.plan is not None
    seeds = [msgspec.json.decode(attempt.provider.build_edit(attempt, part).body)["input"]["seed"]
             for part in attempt.plan.parts]
    assert seeds == [10, 11, 12]


@pytest.mark.parametrize(("body", "images", "mask", "param"), [
    ({"model": KONTEXT}, IMAGES[:2], None, "image"),
    ({"model": "black-forest-labs/flux-kontext-max"}, IMAGES[:1], MASK, "mask"),
    ({"model": "stability-ai/sdxl"}, IMAGES[:1], None, "model"),
    ({"model": KONTEXT, "prompt_upsampling": "maybe"}, IMAGES[:1], None, "prompt_upsampling"),
    ({"model": "black-forest-labs/flux-fill-pro", "mask": "https://example.com/m.png"}, IMAGES[:1], None, "mask"),
    ({"model": "black-forest-labs/flux-fill-pro", "size": "1024x1024"}, IMAGES[:1], None, "size"),
])
def test_what_a_model_cannot_take_is_a_bad_param(body, images, mask, param):  # noqa: ANN001
    with pytest.raises(BadParam) as caught:
        edit(body, images, mask, headers={"x-portkey-strict-params": "true"})
    assert caught.value.param == param


def test_in_lenient_mode_a_size_the_model_cannot_take_is_reported_dropped():
    attempt = edit({"model": "google/nano-banana", "size": "1024x1024"}, IMAGES[:1])
    assert attempt.plan.adjusted == ["size=1024x1024->(dropped)"]
    assert "width" not in sent_input(attempt) and "aspect_ratio" not in sent_input(attempt)


# -- large files: uploaded first, deleted afterwards -------------------------------------------

async def test_a_large_file_is_uploaded_then_deleted_once_the_prediction_is_over():
    attempt = edit({"model": "google/nano-banana"}, [LARGE, IMAGES[0]])
    upstream = ScriptedUpstream(answer(201, HOSTED), answer(201, DONE))
    result = await run(attempt, upstream)
    assert [image.url for image in result.images] == [DONE["output"]]
    upload, create = upstream.sent
    assert (upload.method, upload.url) == ("POST", f"{BASE}/files")
    assert upload.headers["Authorization"] == "Bearer r8_unit"
    parts = await form_parts(Recorded("POST", "/v1/files", {}, CIMultiDict(upload.headers), upload.body))
    assert parts == [("content", "image.png", "image/png", LARGE)]
    assert create.url == f"{BASE}/models/google/nano-banana/predictions"
    assert msgspec.json.decode(create.body)["input"]["image_input"] == [HOSTED["urls"]["get"], uri(IMAGES[0])]
    [delete] = upstream.spawned
    await delete
    assert (upstream.sent[-1].method, upstream.sent[-1].url) == ("DELETE", f"{BASE}/files/f1")
    assert upstream.timeouts == [AFTERWARDS_TIMEOUT]


async def test_small_files_go_inline_with_no_upload():
    attempt = edit({"model": KONTEXT}, IMAGES[:1])
    upstream = ScriptedUpstream(answer(201, DONE))
    await run(attempt, upstream)
    [create] = upstream.sent
    assert create.body == attempt.upstream.body and upstream.spawned == []


async def test_an_upload_answer_without_a_url_is_a_502_and_nothing_is_created():
    attempt = edit({"model": KONTEXT}, [LARGE])
    upstream = ScriptedUpstream(answer(201, {"id": "f1", "urls": {}}))
    with pytest.raises(MalformedAnswer, match="urls.get"):
        await run(attempt, upstream)
    assert len(upstream.sent) == 1 and upstream.spawned == []
