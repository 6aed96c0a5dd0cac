"""PostgreSQL: the store's verbs over the SQL files (sql/), the migrations and the
history's partitions."""
