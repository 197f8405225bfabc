"""Standard metrics: caption scores (``captions``)."""
