"""Command-line entry points: ``run`` (one configuration, several seeds) and ``bench`` (throughput)."""
