"""Encoder/decoder pairs. Each exposes ``encode(x) -> (mu, logvar)`` and ``decode(z) -> logits``."""
