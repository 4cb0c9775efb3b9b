"""Readers of raw skeleton formats (file -> arrays), TFDS builders, and the synthetic demo set."""
