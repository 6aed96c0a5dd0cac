"""Page sizes of job listings, in a module of their own so the CLI's parser can name
them without importing the store."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
