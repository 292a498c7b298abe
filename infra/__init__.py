"""Shared foundation: configuration, the local embedded stack, the command line and the demo."""
