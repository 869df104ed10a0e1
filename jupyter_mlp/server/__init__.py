"""Jupyter server extension: thin route handlers over the store, the event feed, ingest."""
