"""The store: Redis holds live job state, Postgres holds the history.

The engine talks to both only through the verbs of RedisStore and PgStore;
it never sees a Redis key or an SQL string.
"""
