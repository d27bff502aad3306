"""The fleet simulator: Megapacks and EVs that send telemetry and obey operator commands."""
