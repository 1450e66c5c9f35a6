"""A loopback implementation of each vendor's wire contract, with latency and fault injection."""
