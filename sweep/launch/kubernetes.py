"""Kubernetes: a study's workers as an Indexed Job (now) or a CronJob (on a schedule).

Manifests are built as plain dicts by pure functions and written as YAML next to the study's
results; ``kubectl apply`` hands them over (this module never talks to a cluster). Pods run
the worker image (``docker/Dockerfile``); the study file (and its hypermodel file) travels in
a ConfigMap, so any study runs with the stock image; a folder or npz dataset must be in the
image. Workers read the storage URL, and the password apart from
it, from the Secret ``sweep-storage``: no manifest but the Secret's holds either. Each pod
requests CPU and memory; its checkpoints and pictures are lost with it unless a
PersistentVolumeClaim (``--volume-claim``) is mounted for them at ``WORK_MOUNT``.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from sweep.errors import UsageError
from sweep.launch._base import ClusterJob, Scheduler

SECRET = "sweep-storage"  # keys: url (no password), password (optional)
STUDY_MOUNT = "/etc/sweep/study"  # where the ConfigMap's study.yaml appears in a pod
GPU_RESOURCE = "nvidia.com/gpu"  # NVIDIA's device plugin
LABEL = "sweep.study"
HYPERMODEL_KEY = "hypermodel.py"  # the hypermodel file's key in the study's ConfigMap
DEFAULT_IMAGE = "sweep:latest"  # docker/Dockerfile
# Where a --volume-claim is mounted; relative checkpoint and artifact folders go below it.
WORK_MOUNT = PurePosixPath("/var/lib/sweep")


def name_for(text: str, limit: int = 63) -> str:
    """A DNS-1123 name (lowercase letters, digits, '-'); CronJob names allow 52 chars."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:limit].rstrip("-")


def hypermodel_path(job: ClusterJob) -> str:
    """Where the study's hypermodel file is, relative to the study file's folder: the pods
    see it at the same place below ``STUDY_MOUNT``. UsageError when it is not below that
    folder (a ConfigMap cannot mirror an absolute path or one that climbs out)."""
    assert job.hypermodel is not None  # asked only of a study with a hypermodel
    file = job.hypermodel.rpartition(":")[0]
    folder = job.study_file.parent
    try:
        relative = (folder / file).resolve().relative_to(folder.resolve())
    except ValueError:
        raise UsageError(
            f"{job.study_file}: model.hypermodel: {file} is outside the study file's folder, "
            "so it cannot travel with the study to the pods; move it beside the study file "
            "(or below its folder) and give the relative path") from None
    return relative.as_posix()


def study_configmap(job: ClusterJob) -> dict:
    """The study file, and its hypermodel file when it has one."""
    data = {"study.yaml": job.study_file.read_text()}
    if job.hypermodel is not None:
        data[HYPERMODEL_KEY] = (job.study_file.parent / hypermodel_path(job)).read_text()
    return _object("v1", "ConfigMap", f"{job.job_name}-study", job, data=data)


def _study_volume(job: ClusterJob) -> dict:
    """The ConfigMap as files: ``study.yaml``, and the hypermodel at its relative path."""
    volume: dict[str, Any] = {"name": name_for(f"{job.job_name}-study")}
    if job.hypermodel is not None:
        volume["items"] = [{"key": "study.yaml", "path": "study.yaml"},
                           {"key": HYPERMODEL_KEY, "path": hypermodel_path(job)}]
    return {"name": "study", "configMap": volume}


def storage_secret(job: ClusterJob) -> dict:
    """The Secret workers read the storage from; the password is its only copy."""
    data = {"url": job.storage} | ({"password": job.password} if job.password else {})
    return _object("v1", "Secret", SECRET, job, type="Opaque", stringData=data)


def job_spec(job: ClusterJob) -> dict:
    """The spec of the Indexed Job: ``workers`` pods at once, one worker each."""
    work = WORK_MOUNT if job.volume_claim else None
    container: dict[str, Any] = {
        "name": "worker",
        "image": job.image or DEFAULT_IMAGE,
        "command": ["sweep", *job.worker_argv(f"{STUDY_MOUNT}/study.yaml", work)],
        "env": [
            _from_secret("SWEEP_STORAGE", "url"),  # `sweep worker` reads it as --storage
            _from_secret("PGPASSWORD", "password", optional=True),  # or none: ~/.pgpass, trust
            {"name": "TF_FORCE_GPU_ALLOW_GROWTH", "value": "true"},
        ],
        "volumeMounts": [{"name": "study", "mountPath": STUDY_MOUNT, "readOnly": True}],
        "resources": {"requests": {"cpu": _cpus(job.cpus), "memory": job.memory}},
    }
    volumes = [_study_volume(job)]
    if job.volume_claim:
        container["volumeMounts"].append({"name": "work", "mountPath": str(WORK_MOUNT)})
        volumes.append({"name": "work",
                        "persistentVolumeClaim": {"claimName": job.volume_claim}})
    if job.gpus_per_worker:
        container["resources"]["limits"] = {GPU_RESOURCE: job.gpus_per_worker}
    spec = {
        "completionMode": "Indexed",
        "completions": job.workers,
        "parallelism": job.workers,
        # A pod that dies is replaced; other workers take over its point meanwhile.
        "backoffLimit": job.workers,
        "template": {
            "metadata": {"labels": {LABEL: name_for(job.study)}},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if job.time_s:
        spec["activeDeadlineSeconds"] = job.time_s
    return spec


def _cpus(cores: float) -> str:
    """CPU cores as a Kubernetes quantity: ``2``, or ``500m`` for half a core."""
    return f"{cores:g}" if float(cores).is_integer() else f"{round(cores * 1000)}m"


def batch_job(job: ClusterJob) -> dict:
    return _object("batch/v1", "Job", job.job_name, job, spec=job_spec(job))


def cron_job(job: ClusterJob) -> dict:
    """The same Job on ``job.schedule``; a run still going when the next is due is kept."""
    return _object("batch/v1", "CronJob", job.job_name, job, limit=52, spec={
        "schedule": job.schedule,
        "concurrencyPolicy": "Forbid",
        "jobTemplate": {"spec": job_spec(job)},
    })


def manifest_name(job: ClusterJob) -> str:
    return "kubernetes-cronjob.yaml" if job.schedule else "kubernetes-job.yaml"


def _from_secret(env: str, key: str, optional: bool = False) -> dict:
    ref = {"name": SECRET, "key": key} | ({"optional": True} if optional else {})
    return {"name": env, "valueFrom": {"secretKeyRef": ref}}


def _object(api: str, kind: str, name: str, job: ClusterJob, limit: int = 63,
            **body: Any) -> dict:
    metadata = {"name": name_for(name, limit), "labels": {LABEL: name_for(job.study)}}
    if job.namespace:
        metadata["namespace"] = job.namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **body}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the study file) as literal blocks, readable in the manifest."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _dump(objects: list[dict]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)


class KubernetesScheduler(Scheduler):
    """Kubernetes: manifests to ``kubectl apply``, an Indexed Job or a CronJob."""

    needs_time = False  # without --time a Job runs until its workers are done

    def check(self, job: ClusterJob) -> None:
        """Refuse SQLite (a pod's file is lost with the pod and pods on different nodes cannot
        share one), and files of the study that pods cannot see: the ConfigMap carries the
        study file and a hypermodel file beside it (or below its folder), nothing else."""
        if job.storage.startswith("sqlite"):
            raise UsageError(
                f"--storage {job.storage}: a SQLite file inside a pod is lost with the pod and "
                "cannot be shared by pods on different nodes; use PostgreSQL: --storage "
                "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB (the password goes to the "
                f"Secret {SECRET} only; docs/clusters.md)"
            )
        if job.hypermodel is not None:
            hypermodel_path(job)  # raises when the file cannot travel
        if job.data_path is not None and not (Path(job.data_path).is_absolute()
                                              and job.image is not None):
            raise UsageError(
                f"{job.study_file}: dataset.path: {job.data_path} is a path on this machine, "
                "which pods do not see; build an image that holds the data (docker/Dockerfile) "
                "and pass --image IMAGE with --set dataset.path=/absolute/path/in/the/image")

    def warnings(self, job: ClusterJob) -> list[str]:
        """The stock image name without ``--image``: it exists only where someone built it."""
        if job.image is not None:
            return []
        return [f"no --image: pods run {DEFAULT_IMAGE}, which a cluster pulls only if you built "
                "docker/Dockerfile under that name and pushed it to a registry its nodes "
                "reach; give --image REGISTRY/sweep:TAG"]

    def render(self, job: ClusterJob) -> dict[str, str]:
        """The study's ConfigMap with the Job, or with the CronJob when scheduled."""
        workload = cron_job(job) if job.schedule else batch_job(job)
        return {manifest_name(job): _dump([study_configmap(job), workload])}

    def render_secrets(self, job: ClusterJob) -> dict[str, str]:
        return {"kubernetes-secret.yaml": _dump([storage_secret(job)])}

    def launch(self, job: ClusterJob, paths: dict[str, Path]) -> str:
        """Nothing is sent to a cluster: the manifests are written; say how to apply them."""
        secret, manifest = paths["kubernetes-secret.yaml"], paths[manifest_name(job)]
        ns = f" -n {job.namespace}" if job.namespace else ""
        follow = (f"remove the schedule with: kubectl{ns} delete cronjob "
                  f"{name_for(job.job_name, 52)}" if job.schedule
                  else f"follow with: kubectl{ns} get pods -l {LABEL}={name_for(job.study)}")
        kept = "" if job.volume_claim else (
            " (checkpoints and pictures are lost with each pod: --volume-claim NAME keeps "
            "them)")
        return (f"wrote {manifest} and the storage Secret {secret} (mode 0600); "
                f"apply with: kubectl{ns} apply -f {secret} -f {manifest}; {follow}{kept}")

    def unschedule(self, study: str) -> str:
        raise UsageError(
            f"--unschedule is for Slurm; on Kubernetes run: kubectl delete cronjob "
            f"{name_for(f'sweep-{study}', 52)}"
        )
