"""The familiar shapes of a workflow, built on dependencies between jobs:

    from runner import chain, chord, group, step

    flow = chain(
        step("fetch", "https://example.com/a.csv"),
        group(step("parse", part=n) for n in range(4)),    # all four after fetch
        chord([step("score", n) for n in range(3)], step("report")),
    )
    workflow = await client.enqueue_workflow(flow)

A step is one job. `chain(a, b, c)`: each part starts once the one before it ended;
`group(a, b)`: the parts side by side; `chord(header, callback)`: the callback once
every part of the header ended. Shapes nest: a chain of groups, a group of chains.
Every job of one workflow carries its id (`workflow`), which names the graph.

A shape becomes jobs with `depends_on` (runner/client/depends.py): a part depends
on the last jobs of the part before it (and, with pass_results, gets their results),
so the graph is kept by the same atomic scripts as any dependency, and enqueued in
one call (in dependency order). A part that fails cancels what depends on it, unless
its step says `on_failure` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One job of a workflow: a task, its arguments, and the options of Client.new_job
    (queue, priority, delay, at, job_id, on_failure)."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chain:
    parts: tuple[Shape, ...]
    pass_results: bool = False  # each part gets the results of the part before it


@dataclass(frozen=True)
class Group:
    parts: tuple[Shape, ...]


Shape = Step | Chain | Group


def step(task: str, *args: Any, options: Mapping[str, Any] | None = None, **kwargs: Any) -> Step:
    """One job: step("send", "a@example.com", subject="hi", options={"priority": 5})."""
    return Step(task, args, kwargs, options or {})


def _parts(parts: Iterable[Shape | Iterable[Shape]]) -> tuple[Shape, ...]:
    """The parts, a single iterable of them (a generator, a list) taken as they are."""
    given: tuple[Any, ...] = tuple(parts)
    if len(given) == 1 and not isinstance(given[0], Step | Chain | Group):
        given = tuple(given[0])
    items: list[Shape] = []
    for part in given:
        if not isinstance(part, Step | Chain | Group):
            raise TypeError(f"a part of a workflow must be a step, chain or group, got {part!r}")
        items.append(part)
    return tuple(items)


def chain(*parts: Shape | Iterable[Shape], pass_results: bool = False) -> Chain:
    """Each part once the part before it ended. With `pass_results`, each part's first
    steps get the results of the part before it as their first argument: the result
    itself after one step, a list (in the order of the steps) after a group."""
    return Chain(_parts(parts), pass_results)


def group(*parts: Shape | Iterable[Shape]) -> Group:
    """The parts side by side; what follows a group waits for all of them."""
    return Group(_parts(parts))


def chord(header: Group | Iterable[Shape], callback: Shape, pass_results: bool = True) -> Chain:
    """`callback` once every part of `header` ended, with their results as its first
    argument (a list, in the order of the header's steps) unless `pass_results` is
    False."""
    parts = header if isinstance(header, Group) else group(header)
    return Chain((parts, callback), pass_results)


def shape_document(shape: Shape) -> dict[str, Any]:
    """The shape as JSON types: how a task's fan-out crosses from a cpu worker (or
    any body) to the daemon that enqueues it."""
    if isinstance(shape, Step):
        return {"step": shape.task, "args": list(shape.args), "kwargs": dict(shape.kwargs),
                "options": dict(shape.options)}  # fmt: skip
    parts = [shape_document(part) for part in shape.parts]
    if isinstance(shape, Group):
        return {"group": parts}
    return {"chain": parts, "pass_results": shape.pass_results}


def shape_from_document(doc: Any, where: str = "shape") -> Shape:
    """The shape a document describes; ValueError saying what is wrong, and where."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"{where}: expected a step, chain or group, got {doc!r:.80}")
    if "step" in doc:
        task, args, kwargs, options = (doc.get(k) for k in ("step", "args", "kwargs", "options"))
        if not isinstance(task, str) or not isinstance(args, list | None):
            raise ValueError(f"{where}: a step needs a task name and a list of args")
        if not isinstance(kwargs, Mapping | None) or not isinstance(options, Mapping | None):
            raise ValueError(f"{where}: a step's kwargs and options are objects")
        return Step(task, tuple(args or ()), dict(kwargs or {}), dict(options or {}))
    kind = "group" if "group" in doc else "chain"
    parts = doc.get(kind)
    if not isinstance(parts, list):
        raise ValueError(f"{where}: expected a step, chain or group, got {dict(doc)!r:.80}")
    made = tuple(shape_from_document(p, f"{where}.{kind}[{n}]") for n, p in enumerate(parts))
    if kind == "group":
        return Group(made)
    return Chain(made, bool(doc.get("pass_results", False)))
