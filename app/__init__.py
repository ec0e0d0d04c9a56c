"""Herald: self-hosted outbound webhook delivery."""

__version__ = "0.1.0"
