"""_shards layer (private)."""
