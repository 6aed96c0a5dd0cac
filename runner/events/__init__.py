"""Transitions as the outside sees them: read back from the transition stream, named,
filtered and followed as they are written (live feed, waiting clients, webhooks)."""
