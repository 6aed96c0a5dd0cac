"""`runner workflow WF` as text: a line for the workflow, then a line per job."""

from __future__ import annotations

from typing import Any


def workflow_text(doc: dict[str, Any]) -> str:
    states = ", ".join(f"{state} {n}" for state, n in sorted(doc["states"].items()))
    lines = [f"workflow {doc['workflow']}: {len(doc['jobs'])} jobs ({states})"]
    for job in doc["jobs"]:
        after = f"  after {', '.join(job['depends_on'])}" if job["depends_on"] else ""
        lines.append(f"  {job['id']}  {job['task']}  {job['state']}{after}")
    return "\n".join(lines)
