"""Where Redis and PostgreSQL come from: URLs from the settings, or the embedded
servers a development machine starts."""
