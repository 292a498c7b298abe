"""Ingestion: synthetic streams, event files, and publishing events to the event bus."""
