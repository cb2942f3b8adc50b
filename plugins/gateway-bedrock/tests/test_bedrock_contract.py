"""The provider conformance suite, once per auth kind and answer dialect."""
from __future__ import annotations

from typing import Any, ClassVar

import gateway_bedrock
from gateway_bedrock.testing import ACCESS_KEY, API_KEY, SECRET_KEY, error, install, path_of

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract


class _BedrockContract(ProviderContract):
    provider = "bedrock"
    plugins: ClassVar[list[Any]] = [gateway_bedrock]
    entrypoint = "bedrock"

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        # The faithful fake answers: it verifies the signature or API key and the body first.
        install(fake, models=(self.model,), served=served)

    def error_answer(self, status: int, message: str) -> Reply:
        return error(status, "ValidationException", message)


class TestNovaCanvasSigV4(_BedrockContract):
    model = "amazon.nova-canvas-v1:0"
    route = ("POST", path_of(model))
    odd_size = "1000x500"
    mapped_size = "992x496"

    def request_headers(self) -> dict[str, str]:
        return {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": ACCESS_KEY,
                "x-portkey-aws-secret-access-key": SECRET_KEY}

    def assert_auth(self, rec: Recorded) -> None:
        assert rec.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert "X-Amz-Date" in rec.headers

    def images_asked(self, rec: Recorded) -> int:
        return rec.json().get("imageGenerationConfig", {}).get("numberOfImages", 1)

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return error(400, "ValidationException", "This request has been blocked by our content filters. "
                                                 "Please adjust your text prompt to submit a new request.")

    def sent_size(self, rec: Recorded) -> str:
        config: dict[str, Any] = rec.json()["imageGenerationConfig"]
        return f"{config['width']}x{config['height']}"


class TestStableDiffusion35ApiKey(_BedrockContract):
    model = "us.stability.sd3-5-large-v1:0"
    route = ("POST", path_of(model))
    api_key = API_KEY
    odd_size = "1100x1000"
    mapped_size = "1:1"

    def images_asked(self, rec: Recorded) -> int:
        return 1

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(json={"finish_reasons": ["Filter reason: prompt"]})

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["aspect_ratio"]
