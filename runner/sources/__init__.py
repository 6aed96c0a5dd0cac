"""Sources: work taken from where applications already put it (Redis streams and lists).

mapping.py turns one message into a job or a reason to dead-letter it; intake.py
enqueues a batch through runner's own client and settles each message (acknowledged,
removed, or dead-lettered); backpressure.py holds a source while runner's backlog is
over its bound; stream_reader.py and list_reader.py are the two readers; service.py
runs one reader per configured source in the daemon and applies a reload.
"""
