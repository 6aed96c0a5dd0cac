"""Workflows: jobs that wait for other jobs (dependencies), and the shapes built on
them (chain, group, chord)."""
