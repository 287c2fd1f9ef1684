"""Lambda entry points: thin adapters that build AWS adapters and hand them to an engine."""
