"""`make bench`: runner against its peers (arq), on the same servers, in one run.

`bench.run` orchestrates under the project's venv; `bench.arq_side` and
`bench.arq_worker` run under the peer venv (arq pins redis<6), as subprocesses.
Nothing in this package may import `runner` at module level except the modules
that run under the project's venv, so the peer venv can import `bench` itself.
"""
