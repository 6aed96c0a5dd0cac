"""Settings: one immutable value built from the TOML file and the environment, the
parsers of its values, and what a reload may change."""
