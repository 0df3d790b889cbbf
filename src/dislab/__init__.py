"""dislab: a config-driven experiment framework for disentangled representation learning."""

__version__ = "0.1.0"
