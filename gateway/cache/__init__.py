"""The image-aware response cache: backends, keys, and the service the chain uses."""
