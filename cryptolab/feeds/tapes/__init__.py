"""Tapes: JSON Lines of raw frames: read, write, replay, synthesize, import, record."""
