"""Chaos run: load with a ledger, faults injected, then proof that nothing acknowledged was lost."""
