"""Local mode: the whole fleet on loopback (moto server, GitHub stand-in, webhook endpoint)."""
