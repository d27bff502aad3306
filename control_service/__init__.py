"""Control service: operator commands delivered to units and tracked to the end."""
