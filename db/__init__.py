"""Schema migrations and the SQL repositories of every service."""
