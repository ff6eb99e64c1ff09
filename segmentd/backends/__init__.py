"""Backends realize what segmentd records in a network controller; they consume events."""
