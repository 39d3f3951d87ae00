"""outbound: self-hosted outbound SMS and WhatsApp messaging."""

__version__ = "0.1.0"
