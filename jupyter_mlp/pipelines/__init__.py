"""Pipelines: a `.mlpipe` file whose stages rerun pinned runs, wired output -> parameter."""
