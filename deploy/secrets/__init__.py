"""The compose stack's secrets: generated once into a volume, read by the services as files."""
