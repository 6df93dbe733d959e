"""Job pools: local worker processes (the default) or tasks on a Ray cluster."""
