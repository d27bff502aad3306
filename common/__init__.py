"""Code shared by every service: settings, logging, broker topology, database pool, codecs."""
