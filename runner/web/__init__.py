"""`runner web`: a JSON API over HTTP for everything the CLI does, and the dashboard.

app.py builds the aiohttp application, api.py holds the routes, auth.py decides
who may call them, errors.py turns runner's errors into statuses and JSON, and
serve.py runs it all as a process (`runner web`).
"""
