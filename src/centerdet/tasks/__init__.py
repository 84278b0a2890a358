"""The task registry: a name (the config key ``model``) → its :class:`~centerdet.tasks.base.Task`.

centernet (objects, COCO) and centerface (faces with five landmarks, WIDER FACE) are built in; a
new task is a module with a Task subclass, made known with ``register(MyTask())``.
"""
from typing import Dict, List, Optional

from centerdet.errors import CenterDetError
from centerdet.tasks.base import DemoSpec, HeadSpec, Task

_TASKS: Dict[str, Task] = {}


def register(task: Task) -> Task:
    if not task.name or task.schema is None:
        raise ValueError("a task needs a name and a config schema")
    _TASKS[task.name] = task
    return task


def names() -> List[str]:
    return sorted(_TASKS)


def get(name: str) -> Task:
    if not isinstance(name, str) or name not in _TASKS:
        raise CenterDetError(f"config key 'model' must be one of {names()}, got {name!r}")
    return _TASKS[name]


def of(cfg) -> Task:
    """The task of a config."""
    return get(cfg.model)


def task_of_tensors(cfg, tensor_names) -> Optional[Task]:
    """Another task whose heads a checkpoint holds when it lacks some of ``cfg``'s task (for errors
    that name the recipe to add); None when none fits better."""
    held = {name.split(".")[0] for name in tensor_names}
    mine = {spec.name for spec in of(cfg).heads(cfg)}
    for task in map(get, names()):
        theirs = {spec.name for spec in task.heads(task.schema())}
        if task.name != cfg.model and theirs <= held and (not mine <= held or theirs - mine):
            return task
    return None


def _register_builtin():
    from centerdet.tasks.centerface import CenterFaceTask
    from centerdet.tasks.centernet import CenterNetTask

    register(CenterNetTask())
    register(CenterFaceTask())


_register_builtin()

__all__ = ["DemoSpec", "HeadSpec", "Task", "get", "names", "of", "register", "task_of_tensors"]
