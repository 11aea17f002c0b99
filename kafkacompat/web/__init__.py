"""The broker's HTTP side: one ASGI app (JSON admin API, Prometheus metrics) served on Trio.

It runs in the broker's own nursery on the broker's event loop, so it reads
the engines' state directly, with no locks and no copies, between Kafka
requests; nothing it does blocks the Kafka listener for longer than reading
that state takes.
"""
