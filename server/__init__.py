"""Pending License Management server."""
