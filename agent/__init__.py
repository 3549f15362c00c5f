"""capture-agent: the daemon that owns a bank terminal's face cameras."""

__version__ = "0.1.0"
