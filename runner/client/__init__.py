"""The Python client, and what it builds for the CLI and the web: enqueue, requests
on jobs, listings, and the documents behind show, status and cron."""
