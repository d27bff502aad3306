"""Local stand-ins for the compose base images, built from Debian packages (offline hosts)."""
