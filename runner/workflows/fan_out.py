"""Fan-out decided at run time: a running task hands out jobs by returning them.

    from runner import fan_out, group, step

    def discover(folder):
        files = sorted(os.listdir(folder))
        return fan_out(group(step("convert", f) for f in files), then=step("report"))

Once the body returned, the daemon that ran it enqueues the children (each depends
on the task's job, so they start once it ended) and the `then` part (once every
child ended, with their results as its first argument unless `pass_results` is
False), in the task's workflow: a job outside any workflow starts one, named by its
own id. What depends on the task's job waits for the fan-out's last jobs instead,
and takes their results in its place: the task is replaced by its fan-out, as one
step of a chain is by a sub-chain.

The hand-out is returned, not made from inside the body, so it works alike for
async, io and cpu tasks (a cpu worker has no connection to Redis), and it is
exactly once: the children's ids are derived from the task's job id (<id>.1,
<id>.2, ...), so a run that dies after handing out and runs again hands out the
same ids, which are kept as they were. The job's own result is a summary: the
workflow, how many jobs it handed out, and the jobs that stand for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.workflows.canvas import (
    Chain,
    Group,
    Shape,
    Step,
    group,
    shape_document,
    shape_from_document,
)

FAN_OUT = "runner:fan_out"  # the key that marks a task's result as a fan-out


@dataclass(frozen=True)
class FanOut:
    children: Shape
    then: Shape | None
    pass_results: bool


def fan_out(
    children: Shape | Iterable[Shape], then: Shape | None = None, *, pass_results: bool = True
) -> dict[str, Any]:
    """What a task returns to hand out `children` (a shape, or an iterable of shapes
    run side by side) and, once they all ended, `then`. A plain dict of JSON types,
    so a cpu task returns it as any result."""
    shape = children if isinstance(children, Step | Chain | Group) else group(children)
    doc: dict[str, Any] = {"children": shape_document(shape), "pass_results": pass_results}
    if then is not None:
        doc["then"] = shape_document(then)
    return {FAN_OUT: doc}


def is_fan_out(result: Any) -> bool:
    return isinstance(result, dict) and FAN_OUT in result


def read_fan_out(result: dict[str, Any]) -> FanOut:
    """The fan-out a result describes; ValueError saying what is wrong, and where."""
    doc = result[FAN_OUT]
    if not isinstance(doc, dict) or "children" not in doc:
        raise ValueError("a fan-out needs its children: return fan_out(...) as it is")
    then = doc.get("then")
    return FanOut(
        shape_from_document(doc["children"], "children"),
        None if then is None else shape_from_document(then, "then"),
        bool(doc.get("pass_results", True)),
    )
