"""Experiment configs: each module exposes `get_config()` returning an `ml_collections.ConfigDict`."""
