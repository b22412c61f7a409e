"""Runner classes: the class-sizes JSON (`/${name_prefix}/config/class-sizes`), task sizes.

    {"default_class": "small",
     "classes": {"small": {"cpu": 512, "memory": 1024},
                 "docker": {"cpu": 2048, "memory": 7168, "docker": true,
                            "capacity_provider": "runner-fleet-docker-x86_64",
                            "distinct_instance": true}}}

cpu in ECS units, memory in MiB; optional per class: `architecture` (x86_64, arm64),
`ephemeral_storage_gib` (21-200, Fargate classes), `capacity_strategy` (a Fargate class's
own FARGATE, FARGATE_SPOT or spotPreferred; null: the module-wide one), and `docker` (true:
the class runs on its EC2 `capacity_provider`, one task per instance when
`distinct_instance`). A Fargate class takes a Fargate size, a Docker class an EC2 task size.
Pure functions: the Lambda and the CLI both use them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# cpu units → (lowest MiB, highest MiB, step MiB), or the explicit list for 256.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_MEMORY: dict[int, tuple[int, ...] | range] = {
    256: (512, 1024, 2048),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}
# A class name becomes part of a task definition family: letters, digits, "-" and "_".
CLASS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ClassSizesError(ValueError):
    """The class-sizes document is invalid (the message says what to fix)."""


ARCHITECTURES = ("x86_64", "arm64")
EPHEMERAL_STORAGE_GIB = range(21, 200 + 1)  # Fargate's 20 GiB when not set
CAPACITY_STRATEGIES = ("FARGATE", "FARGATE_SPOT", "spotPreferred")
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")  # any other capacity provider is EC2's
# A task's size on an EC2 container instance: cpu units, and memory from 128 MiB.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#task_size
EC2_CPU = range(128, 196608 + 1)
EC2_MIN_MEMORY = 128


@dataclass(frozen=True)
class ClassSize:
    cpu: int
    memory: int
    architecture: str = "x86_64"
    ephemeral_storage_gib: int | None = None
    docker: bool = False
    capacity_strategy: str | None = None  # a Fargate class's own; None: the module-wide one
    capacity_provider: str | None = None  # a Docker class's EC2 capacity provider
    distinct_instance: bool = True  # a Docker class: one task per instance


@dataclass(frozen=True)
class ClassSizes:
    default_class: str
    classes: dict[str, ClassSize]

    def resolve(self, name: str | None) -> str | None:
        """The configured class name for a label's name (case-insensitive), or None."""
        if name is None:
            return self.default_class
        for configured in self.classes:
            if configured.lower() == name.lower():
                return configured
        return None


def fargate_size_problem(cpu: int, memory: int) -> str | None:
    """Why (cpu, memory) is not a Fargate task size, or None if it is one."""
    allowed = FARGATE_MEMORY.get(cpu)
    if allowed is None:
        return f"cpu {cpu} is not a Fargate size ({', '.join(map(str, FARGATE_MEMORY))})"
    if memory not in allowed:
        if isinstance(allowed, range):
            choices = f"{allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step}"
        else:
            choices = ", ".join(f"{m}" for m in allowed) + " MiB"
        return f"memory {memory} MiB does not fit cpu {cpu} (allowed: {choices})"
    return None


def ec2_size_problem(cpu: int, memory: int) -> str | None:
    """Why (cpu, memory) is not an EC2 task size, or None if it is one."""
    if cpu not in EC2_CPU:
        return f"cpu {cpu} is not an EC2 task size ({EC2_CPU.start}-{EC2_CPU.stop - 1} units)"
    if memory < EC2_MIN_MEMORY:
        return f"memory {memory} MiB is below the EC2 task minimum of {EC2_MIN_MEMORY} MiB"
    return None


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ClassSizesError(f"{what} must be an integer, not {value!r}")
    return int(value)


def _bool(value: object, default: bool, what: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ClassSizesError(f"{what} must be true or false, not {value!r}")
    return value


def _kind_problem(
    docker: bool,
    storage: int | None,
    strategy: str | None,
    provider: str | None,
    distinct: bool | None,
) -> str | None:
    """Why these fields do not fit a Docker (or a Fargate) class, or None."""
    if not docker:
        if provider is not None or distinct is not None:
            return "capacity_provider and distinct_instance are for Docker classes"
        return None
    # a Docker class runs on the instance's disk, on its own EC2 capacity provider
    if storage is not None:
        return (
            "ephemeral_storage_gib is for Fargate classes (a Docker class uses the instance "
            "volume, docker_volume_size_gib)"
        )
    if strategy is not None:
        return (
            "capacity_strategy is for Fargate classes (a Docker class runs on its EC2 "
            "capacity provider)"
        )
    if provider is None:
        return "a Docker class needs its capacity_provider"
    return None


def parse_class(name: str, size: dict[str, Any]) -> ClassSize:
    """One class of the document; raises ClassSizesError naming the class."""
    cpu = _int(size.get("cpu"), f"class {name!r} cpu")
    memory = _int(size.get("memory"), f"class {name!r} memory")
    docker = _bool(size.get("docker"), False, f"class {name!r} docker")
    problem = (ec2_size_problem if docker else fargate_size_problem)(cpu, memory)
    if problem:
        raise ClassSizesError(f"class {name!r}: {problem}")
    architecture = size.get("architecture") or "x86_64"
    if architecture not in ARCHITECTURES:
        raise ClassSizesError(
            f"class {name!r}: architecture must be one of {', '.join(ARCHITECTURES)}"
        )
    storage = size.get("ephemeral_storage_gib")
    if storage is not None:
        storage = _int(storage, f"class {name!r} ephemeral_storage_gib")
        if storage not in EPHEMERAL_STORAGE_GIB:
            raise ClassSizesError(f"class {name!r}: ephemeral_storage_gib must be 21-200")
    strategy = size.get("capacity_strategy")
    if strategy is not None and strategy not in CAPACITY_STRATEGIES:
        raise ClassSizesError(
            f"class {name!r}: capacity_strategy must be one of {', '.join(CAPACITY_STRATEGIES)}"
        )
    provider = size.get("capacity_provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise ClassSizesError(f"class {name!r}: capacity_provider must be a name")
    distinct = _bool(size.get("distinct_instance"), True, f"class {name!r} distinct_instance")
    problem = _kind_problem(docker, storage, strategy, provider, size.get("distinct_instance"))
    if problem:
        raise ClassSizesError(f"class {name!r}: {problem}")
    return ClassSize(cpu, memory, architecture, storage, docker, strategy, provider, distinct)


def parse_class_sizes(text: str) -> ClassSizes:
    """Parses and validates the class-sizes JSON; raises ClassSizesError."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ClassSizesError(f"class sizes are not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("classes"), dict):
        raise ClassSizesError('class sizes must be an object with a "classes" object')
    classes: dict[str, ClassSize] = {}
    seen: dict[str, str] = {}
    for name, size in document["classes"].items():
        if not CLASS_NAME.match(name):
            raise ClassSizesError(f"class name {name!r} must be 1-64 letters, digits, '-' or '_'")
        if name.lower() in seen:
            raise ClassSizesError(
                f"classes {seen[name.lower()]!r} and {name!r} differ only in case "
                "(labels match case-insensitively)"
            )
        seen[name.lower()] = name
        if not isinstance(size, dict):
            raise ClassSizesError(f"class {name!r} must be an object with cpu and memory")
        classes[name] = parse_class(name, size)
    if not classes:
        raise ClassSizesError("class sizes define no class")
    default = document.get("default_class")
    if default is None and len(classes) == 1:
        default = next(iter(classes))
    if not isinstance(default, str) or default not in classes:
        raise ClassSizesError(
            f"default_class {default!r} is not one of the classes ({', '.join(classes)})"
        )
    return ClassSizes(default_class=default, classes=classes)
