"""The image store: images the gateway keeps and serves at ``GET /v1/images/files/{id}``."""
