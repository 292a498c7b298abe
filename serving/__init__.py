"""Serving: the gRPC ranking service over an exported two-tower model."""
