"""Both providers' translations in process (no server): bodies built, answers and errors read, URLs."""
from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from gateway.sdk import IMAGES_EDITS, PROXY, AuthError, BadParam, BadRequest, ContentPolicyViolation, MalformedAnswer
from gateway.testing import PNG_1X1, answer, make_attempt
from gateway_google import GeminiProvider, VertexProvider
from gateway_google.testing import answer_doc, error_doc, make_service_account

PRO = "gemini-3-pro-image"
FLASH = "gemini-3.1-flash-image"
FLASH_25 = "gemini-2.5-flash-image"
VERTEX = {"vertex_project_id": "proj-1", "vertex_region": "us-central1"}


def body_of(attempt: Any, part: int = 0) -> dict[str, Any]:
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[part])
    return msgspec.json.decode(req.body)


def config_of(attempt: Any) -> dict[str, Any]:
    return body_of(attempt)["generationConfig"]


# -- the request ------------------------------------------------------------------------------

def test_a_generation_is_one_generate_content_call_with_the_key_in_a_header():
    attempt = make_attempt(GeminiProvider, body={"prompt": "a fox", "model": PRO, "size": "1024x1024"},
                           api_key="AIza-unit")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert (req.method, req.url) == (
        "POST", "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent")
    assert req.headers["x-goog-api-key"] == "AIza-unit" and "Authorization" not in req.headers
    assert "key=" not in req.url
    assert msgspec.json.decode(req.body) == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}}}


def test_the_default_model_is_gemini_3_1_flash_image_and_no_size_sends_no_image_config():
    attempt = make_attempt(GeminiProvider, body={"prompt": "a fox"})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url.endswith("/models/gemini-3.1-flash-image:generateContent")
    assert msgspec.json.decode(req.body)["generationConfig"] == {"responseModalities": ["IMAGE"]}


@pytest.mark.parametrize(("model", "size", "ratio", "tier"), [
    (PRO, "1536x1024", "3:2", "1K"),
    (PRO, "1024x1536", "2:3", "1K"),
    (PRO, "1792x1024", "16:9", "1K"),
    (PRO, "2048x2048", "1:1", "2K"),
    (PRO, "5632x3072", "16:9", "4K"),
    (PRO, "512x512", "1:1", "1K"),
    (FLASH, "512x512", "1:1", "512"),
    (FLASH, "1024x4096", "1:4", "2K"),
    (FLASH, "4096x512", "8:1", "1K"),
    ("gemini-3.1-flash-image-preview", "2816x1536", "16:9", "2K"),
])
def test_size_maps_to_the_nearest_ratio_and_the_tier_nearest_in_pixels(model, size, ratio, tier):  # noqa: ANN001
    attempt = make_attempt(GeminiProvider, body={"model": model, "size": size})
    assert config_of(attempt)["imageConfig"] == {"aspectRatio": ratio, "imageSize": tier}


def test_gemini_2_5_flash_image_takes_a_ratio_but_no_image_size():
    attempt = make_attempt(GeminiProvider, body={"model": FLASH_25, "size": "4096x4096"})
    assert config_of(attempt)["imageConfig"] == {"aspectRatio": "1:1"}


def test_a_ratio_a_model_lacks_is_mapped_leniently_and_refused_strictly():
    attempt = make_attempt(GeminiProvider, body={"model": PRO, "size": "1024x4096"})
    assert config_of(attempt)["imageConfig"]["aspectRatio"] == "9:16"
    assert attempt.plan.adjusted == ["size=1024x4096->9:16"]
    with pytest.raises(BadParam) as caught:
        make_attempt(GeminiProvider, body={"model": PRO, "size": "1024x4096"},
                     headers={"x-portkey-strict-params": "true"})
    assert caught.value.param == "size" and "1:4" not in caught.value.message


def test_a_new_model_of_a_family_takes_its_familys_ratios():
    attempt = make_attempt(GeminiProvider, body={"model": "gemini-3.1-flash-image-preview-11-2026", "size": "800x6400"})
    assert config_of(attempt)["imageConfig"]["aspectRatio"] == "1:8"
    attempt = make_attempt(GeminiProvider, body={"model": "gemini-4-flash-image", "size": "800x6400"})
    assert config_of(attempt)["imageConfig"]["aspectRatio"] == "9:16"


@pytest.mark.parametrize(("model", "quality", "tier"), [
    (PRO, "hd", "2K"), (PRO, "high", "2K"), (PRO, "low", "1K"), (PRO, "standard", "1K"), (PRO, "auto", "1K"),
    (FLASH, "low", "512"), (FLASH, "medium", "1K"), (FLASH, "high", "2K"),
])
def test_quality_picks_the_tier_when_no_size_does(model, quality, tier):  # noqa: ANN001
    attempt = make_attempt(GeminiProvider, body={"model": model, "quality": quality})
    assert config_of(attempt)["imageConfig"] == {"imageSize": tier}


def test_the_size_wins_over_quality_and_says_so():
    attempt = make_attempt(GeminiProvider, body={"model": PRO, "quality": "hd", "size": "1024x1024"})
    assert config_of(attempt)["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "1K"}
    assert attempt.plan.adjusted == ["quality=hd->(dropped)"]


def test_quality_is_dropped_for_a_model_without_tiers():
    attempt = make_attempt(GeminiProvider, body={"model": FLASH_25, "quality": "hd"})
    assert "imageConfig" not in config_of(attempt)
    assert attempt.plan.adjusted == ["quality=hd->(dropped)"]


def test_n_fans_out_one_image_per_call_with_the_seed_moved_on():
    attempt = make_attempt(GeminiProvider, body={"model": PRO, "n": 3, "seed": 7})
    assert [p.n for p in attempt.plan.parts] == [1, 1, 1]
    assert [body_of(attempt, i)["generationConfig"]["seed"] for i in range(3)] == [7, 8, 9]


def test_natives_go_where_the_api_wants_them():
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    attempt = make_attempt(GeminiProvider, body={"model": FLASH, "temperature": 0.4, "safety_settings": settings,
                                                 "aspect_ratio": "21:9", "image_size": "4K", "size": "1024x1024"})
    body = body_of(attempt)
    assert body["safetySettings"] == settings
    assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "temperature": 0.4,
                                        "imageConfig": {"aspectRatio": "21:9", "imageSize": "4K"}}


@pytest.mark.parametrize(("body", "param"), [
    ({"model": PRO, "aspect_ratio": "1:8"}, "aspect_ratio"),
    ({"model": FLASH_25, "image_size": "2K"}, "image_size"),
    ({"model": PRO, "image_size": "1k"}, "image_size"),
    ({"model": PRO, "seed": "seven"}, "seed"),
    ({"model": PRO, "temperature": True}, "temperature"),
    ({"model": PRO, "safety_settings": {"category": "x"}}, "safety_settings"),
    ({"model": "gemini/../../x"}, "model"),
])
def test_bad_natives_are_a_400_naming_them(body, param):  # noqa: ANN001
    attempt = make_attempt(GeminiProvider, body=body)
    with pytest.raises(BadParam) as caught:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert caught.value.param == param


def test_vertex_only_natives_are_refused_by_the_gemini_api_and_taken_by_vertex():
    natives = {"person_generation": "ALLOW_ADULT", "output_mime_type": "image/jpeg", "output_compression_quality": 80}
    with pytest.raises(BadParam):
        make_attempt(GeminiProvider, body={"model": PRO, **natives}, headers={"x-portkey-strict-params": "true"})
    lenient = make_attempt(GeminiProvider, body={"model": PRO, **natives})
    assert "imageConfig" not in config_of(lenient) and len(lenient.plan.adjusted) == 3
    attempt = make_attempt(VertexProvider, body={"model": PRO, **natives}, options=VERTEX, api_key="ya29.t")
    assert config_of(attempt)["imageConfig"] == {
        "personGeneration": "ALLOW_ADULT", "imageOutputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80}}


def test_an_edit_sends_the_prompt_then_the_images_as_inline_data():
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 16
    attempt = make_attempt(GeminiProvider, endpoint=IMAGES_EDITS, images=[PNG_1X1, jpeg],
                           body={"prompt": "put them together", "model": PRO, "seed": "5", "n": 2,
                                 "temperature": "0.5", "size": "1536x1024"})
    part = attempt.plan.parts[1]
    req = attempt.provider.build_edit(attempt, part)
    body = msgspec.json.decode(req.body)
    assert body["contents"] == [{"role": "user", "parts": [
        {"text": "put them together"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG_1X1).decode()}},
        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(jpeg).decode()}}]}]
    assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "seed": 6, "temperature": 0.5,
                                        "imageConfig": {"aspectRatio": "3:2", "imageSize": "1K"}}


def test_an_edit_takes_as_many_images_as_the_model_does():
    with pytest.raises(BadParam) as caught:
        make_attempt(GeminiProvider, endpoint=IMAGES_EDITS, images=[PNG_1X1] * 4, body={"model": FLASH_25})
    assert caught.value.param == "image"
    make_attempt(GeminiProvider, endpoint=IMAGES_EDITS, images=[PNG_1X1] * 14, body={"model": PRO})
    with pytest.raises(BadParam) as caught:
        make_attempt(GeminiProvider, endpoint=IMAGES_EDITS, images=[PNG_1X1], mask=PNG_1X1, body={"model": PRO})
    assert caught.value.param == "mask"


def test_no_key_is_a_401_before_anything_is_sent():
    attempt = make_attempt(GeminiProvider, api_key=None)
    with pytest.raises(AuthError):
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])


# -- the answer ------------------------------------------------------------------------------

def parse(doc: Any, provider: type = GeminiProvider) -> Any:
    attempt = make_attempt(provider, options=VERTEX if provider is VertexProvider else None)
    return attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, doc))


def test_the_image_is_the_inline_data_part_that_is_not_a_thought():
    final = b"\x89PNG\r\n\x1a\nfinal"
    result = parse(answer_doc([final], thoughts=True, text="Here it is."))
    [image] = result.images
    assert base64.b64decode(msgspec.json.decode(image.b64)) == final
    assert image.content_type == "image/png"


def test_usage_metadata_becomes_openais_usage():
    doc = answer_doc([b"img"], thoughts=True, text="ok", image_tokens=1120, prompt_tokens=12)
    assert parse(doc).extra == {"usage": {
        "input_tokens": 12, "output_tokens": 1120 + 8 + 180, "total_tokens": 12 + 1128 + 180,
        "input_tokens_details": {"text_tokens": 12},
        "output_tokens_details": {"image_tokens": 1120, "text_tokens": 8, "reasoning_tokens": 180}}}


@pytest.mark.parametrize("doc", [
    {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}},
    {"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": "unsafe"}, "candidates": []},
    {"candidates": [{"finishReason": "IMAGE_SAFETY"}]},
    {"candidates": [{"finishReason": "IMAGE_PROHIBITED_CONTENT", "content": {"parts": []}}]},
    {"candidates": [{"finishReason": "PROHIBITED_CONTENT"}]},
    {"candidates": [{"finishReason": "SAFETY", "content": {"parts": [{"text": "I can't", "thought": True}]}}]},
])
def test_blocks_are_content_policy_violations(doc):  # noqa: ANN001
    with pytest.raises(ContentPolicyViolation) as caught:
        parse(doc, VertexProvider)
    assert (caught.value.status, caught.value.code) == (400, "content_policy_violation")


@pytest.mark.parametrize(("doc", "said"), [
    ({"candidates": [{"finishReason": "STOP", "content": {"parts": [{"text": "Here is a poem instead."}]}}]},
     "finishReason STOP; the model said: 'Here is a poem instead.'"),
    ({"candidates": [{"finishReason": "NO_IMAGE"}]}, "finishReason NO_IMAGE"),
    ({"candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": "aGk="}, "thought": True}]}}]}, "finishReason STOP"),
    ({"candidates": []}, "no `candidates`"),
    ({"unexpected": True}, "no `candidates`"),
    ({"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]}, "no base64 `data`"),
    ({"candidates": "many"}, "not a generateContent answer"),
])
def test_an_answer_without_an_image_or_a_block_is_malformed_naming_what_came_back(doc, said):  # noqa: ANN001
    with pytest.raises(MalformedAnswer) as caught:
        parse(doc)
    assert said in caught.value.message and caught.value.status == 502


# -- errors ------------------------------------------------------------------------------------

def test_errors_keep_googles_status_message_and_grpc_status():
    provider = make_attempt(GeminiProvider).provider
    err = provider.upstream_error(answer(429, error_doc(429, "Resource has been exhausted (e.g. check quota).")))
    assert (err.status, err.type, err.code) == (429, "rate_limit_error", "resource_exhausted")
    assert err.message == "google error: Resource has been exhausted (e.g. check quota)."
    err = provider.upstream_error(answer(400, [error_doc(400, "Bad aspect ratio")]))
    assert (err.status, err.code, err.message) == (400, "invalid_argument", "google error: Bad aspect ratio")
    err = provider.upstream_error(answer(503, b"upstream connect error", content_type="text/plain"))
    assert (err.status, err.message) == (503, "google error: HTTP 503: upstream connect error")


def test_retry_info_becomes_retry_after():
    doc = error_doc(429, "Quota exceeded")
    doc["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22.4s"}]
    err = make_attempt(GeminiProvider).provider.upstream_error(answer(429, doc))
    assert err.upstream_headers["Retry-After"] == "23"


# -- where requests go -------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "query", "url"), [
    ("/models", "", "https://generativelanguage.googleapis.com/v1beta/models"),
    ("/models/gemini-3-pro-image:generateContent", "alt=sse",
     "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent?alt=sse"),
    ("/v1alpha/models", "", "https://generativelanguage.googleapis.com/v1alpha/models"),
    ("/v1beta/files", "pageSize=2", "https://generativelanguage.googleapis.com/v1beta/files?pageSize=2"),
    ("/upload/v1beta/files", "", "https://generativelanguage.googleapis.com/upload/v1beta/files"),
])
def test_gemini_passthrough_paths(path, query, url):  # noqa: ANN001
    attempt = make_attempt(GeminiProvider, endpoint=PROXY, method="GET", path=path, query_string=query,
                           api_key="AIza-unit")
    req = attempt.provider.build_proxy(attempt)
    assert req.url == url
    assert req.headers["x-goog-api-key"] == "AIza-unit"


@pytest.mark.parametrize(("options", "url"), [
    ({"vertex_project_id": "p1"}, "https://aiplatform.googleapis.com/v1/projects/p1/locations/global"),
    ({"vertex_project_id": "p1", "vertex_region": "us-central1"},
     "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1"),
    ({"vertex_project_id": "p1", "vertex_region": "eu"},
     "https://aiplatform.eu.rep.googleapis.com/v1/projects/p1/locations/eu"),
])
def test_vertex_hosts_per_location(options, url):  # noqa: ANN001
    attempt = make_attempt(VertexProvider, body={"model": PRO}, options=options, api_key="ya29.t")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == url + "/publishers/google/models/gemini-3-pro-image:generateContent"
    assert "Authorization" not in req.headers  # added when sent, once the token is known


def test_vertex_takes_the_project_from_the_service_account():
    account = make_service_account("https://oauth2.googleapis.com/token", project_id="sa-project")
    attempt = make_attempt(VertexProvider, options={"vertex_service_account_json": account}, api_key=None)
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert "/projects/sa-project/locations/global/" in req.url


@pytest.mark.parametrize(("path", "url"), [
    ("/projects/p9/locations/europe-west4/publishers/google/models/x:generateContent",
     "https://europe-west4-aiplatform.googleapis.com/v1/projects/p9/locations/europe-west4/publishers/google/models/"
     "x:generateContent"),
    ("/publishers/google/models/gemini-3-pro-image:countTokens",
     "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/"
     "gemini-3-pro-image:countTokens"),
    ("/v1beta1/projects/p1/locations/global/endpoints", "https://aiplatform.googleapis.com/v1beta1/projects/p1/"
                                                        "locations/global/endpoints"),
])
def test_vertex_passthrough_paths(path, url):  # noqa: ANN001
    attempt = make_attempt(VertexProvider, endpoint=PROXY, method="POST", path=path, body=b"{}",
                           options={"vertex_project_id": "p1"}, api_key="ya29.t")
    assert attempt.provider.build_proxy(attempt).url == url


@pytest.mark.parametrize(("options", "message"), [
    ({"vertex_region": "us-central1.evil.example"}, "not a Google Cloud location"),
    ({"vertex_project_id": "p/../x"}, "not a Google Cloud project id"),
    ({"vertex_service_account_json": "{not json"}, "not valid JSON"),
    ({"vertex_service_account_json": {"type": "authorized_user", "client_email": "a", "private_key": "k"}},
     "only a service-account key"),
    ({"vertex_service_account_json": {"client_email": "a@b"}}, "has no `private_key`"),
    ({"vertex_location": "us"}, "unknown field"),
])
def test_vertex_options_are_checked_without_echoing_a_key(options, message):  # noqa: ANN001
    with pytest.raises(BadRequest) as caught:
        make_attempt(VertexProvider, options=options)
    assert message in caught.value.message and "PRIVATE KEY" not in caught.value.message


def test_vertex_needs_credentials_and_a_project():
    attempt = make_attempt(VertexProvider, options={"vertex_project_id": "p1"}, api_key=None)
    with pytest.raises(AuthError) as caught:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert "vertex_service_account_json" in caught.value.message
    attempt = make_attempt(VertexProvider, api_key="ya29.t")
    with pytest.raises(BadRequest) as caught:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert caught.value.param == "vertex_project_id"


def test_vertex_header_options_use_portkeys_names():
    account = make_service_account("https://oauth2.googleapis.com/token")
    attempt = make_attempt(VertexProvider, api_key=None, headers={
        "x-portkey-vertex-project-id": "hdr-project", "x-portkey-vertex-region": "asia-northeast1",
        "x-portkey-vertex-service-account-json": msgspec.json.encode(account).decode()})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url.startswith("https://asia-northeast1-aiplatform.googleapis.com/v1/projects/hdr-project/"
                              "locations/asia-northeast1/")
    assert "PRIVATE KEY" not in repr(attempt.options)


def test_a_service_account_key_as_the_provider_key_is_read_as_one():
    account = make_service_account("https://oauth2.googleapis.com/token", project_id="from-key")
    attempt = make_attempt(VertexProvider, api_key=msgspec.json.encode(account).decode())
    assert attempt.provider.credentials(attempt).client_email == account["client_email"]
    assert "/projects/from-key/" in attempt.provider.build_generation(attempt, attempt.plan.parts[0]).url
