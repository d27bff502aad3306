"""`make compose-test`: the compose stack on the real Docker engine (not collected by pytest)."""
