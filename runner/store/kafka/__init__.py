"""Kafka, read by the Kafka source: its consumer group and offsets. The client,
aiokafka, is an optional dependency (`pip install 'runner[kafka]'`), imported only
when a Kafka source starts."""
