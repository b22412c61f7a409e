"""The cleanup's Docker instances: retire what a lost STOPPED event left (instances.py).

A container instance of the fleet's Docker capacity providers that is DRAINING and runs no
task is terminated as the STOPPED event would have terminated it: its task has ended, and
the instance must serve no other. Off with DOCKER_INSTANCE_REUSE. One page of DRAINING
instances is looked at per run, and at most Limits.instance_terminations are terminated.
"""

from __future__ import annotations

from control_plane import instances, log
from control_plane.cleanup.context import CleanupRun
from control_plane.cleanup.tasks import ECS_PAGE, ecs_call


def retire_drained_instances(run: CleanupRun) -> None:
    settings = run.svc.settings
    if settings.docker_instance_reuse:
        return
    listed = ecs_call(
        run,
        run.svc.ecs.list_container_instances,
        cluster=settings.cluster_name,
        status="DRAINING",
        maxResults=ECS_PAGE,
    )
    if listed.get("nextToken"):
        run.deferred.add("listed_instances")
    for instance in instances.describe(run.svc, listed.get("containerInstanceArns") or []):
        if not (instances.idle(instance) and instances.ours(instance, settings.name_prefix)):
            continue
        if not run.take("instance_terminations"):
            return
        arn = instance.get("containerInstanceArn")
        with log.bound(container_instance=arn, ec2_instance_id=instance.get("ec2InstanceId")):
            if instances.retire(run.svc, instance) == "terminated":
                run.count("instances_terminated")
                log.warning("cleanup: drained Docker instance terminated (its task has ended)")
