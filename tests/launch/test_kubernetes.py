"""Kubernetes: the rendered manifests, read back with yaml.safe_load_all, field by field."""

from __future__ import annotations

import os
import re
import stat

import pytest
import yaml

from sweep.cli import main
from sweep.errors import UsageError
from sweep.launch import SCHEDULERS, kubernetes

from conftest import SUBMIT_PASSWORD, SUBMIT_URL


def _load(text: str) -> list[dict]:
    return list(yaml.safe_load_all(text))


def test_job_is_indexed_with_gpus_and_the_storage_from_the_secret(cluster_job, tmp_path):
    job = cluster_job("kubernetes", workers=4, gpus_per_worker=2, time="02:00:00",
                      image="registry.example/sweep:1.0", namespace="ml")
    files = SCHEDULERS["kubernetes"].render(job)
    configmap, batch = _load(files["kubernetes-job.yaml"])
    assert batch["apiVersion"] == "batch/v1" and batch["kind"] == "Job"
    assert batch["metadata"] == {"name": "sweep-tiny", "labels": {"sweep.study": "tiny"},
                                 "namespace": "ml"}
    spec = batch["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == 4 and spec["completions"] == 4
    assert spec["activeDeadlineSeconds"] == 7200
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/sweep:1.0"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 2}
    assert container["command"][:3] == ["sweep", "worker", "/etc/sweep/study/study.yaml"]
    assert "--storage" not in container["command"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SWEEP_STORAGE"]["valueFrom"]["secretKeyRef"] == {"name": "sweep-storage",
                                                                 "key": "url"}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    # The study travels in the ConfigMap mounted where the command reads it.
    assert configmap["kind"] == "ConfigMap"
    assert pod["volumes"] == [{"name": "study", "configMap": {"name": "sweep-tiny-study"}}]
    assert container["volumeMounts"][0]["mountPath"] == "/etc/sweep/study"
    assert (yaml.safe_load(configmap["data"]["study.yaml"])
            == yaml.safe_load((tmp_path / "study.yaml").read_text()))
    assert SUBMIT_PASSWORD not in files["kubernetes-job.yaml"]


def test_secret_holds_the_url_and_password_apart(cluster_job):
    job = cluster_job("kubernetes")
    (secret,) = _load(SCHEDULERS["kubernetes"].render_secrets(job)["kubernetes-secret.yaml"])
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "sweep-storage"
    assert secret["stringData"] == {
        "url": "postgresql+psycopg://sweep@db.example:5432/sweeps",
        "password": SUBMIT_PASSWORD,
    }


def test_cronjob_runs_the_same_job_on_the_schedule(cluster_job):
    job = cluster_job("kubernetes", workers=2, gpus_per_worker=1, schedule="0 2 * * *")
    files = SCHEDULERS["kubernetes"].render(job)
    assert list(files) == ["kubernetes-cronjob.yaml"]
    configmap, cron = _load(files["kubernetes-cronjob.yaml"])
    assert cron["kind"] == "CronJob" and cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    now = kubernetes.batch_job(cluster_job("kubernetes", workers=2, gpus_per_worker=1))
    assert cron["spec"]["jobTemplate"]["spec"] == now["spec"]
    assert SUBMIT_PASSWORD not in files["kubernetes-cronjob.yaml"]


def test_cpu_job_without_a_limit_asks_for_cpu_and_memory_only(cluster_job):
    spec = kubernetes.batch_job(cluster_job("kubernetes", time=None))["spec"]
    assert "activeDeadlineSeconds" not in spec
    # before: no requests, so a node could take more pods than it has memory for
    assert spec["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"}}


def test_requests_and_a_volume_claim_for_checkpoints_and_artifacts(cluster_job):
    job = cluster_job("kubernetes", cpus_per_worker=0.5, memory_per_worker="1536Mi",
                      volume_claim="sweep-work", gpus_per_worker=1,
                      checkpoint_dir="checkpoints", artifact_dir="/abs/artifacts")
    pod = kubernetes.batch_job(job)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1536Mi"},
                                      "limits": {"nvidia.com/gpu": 1}}
    assert {"name": "work", "persistentVolumeClaim": {"claimName": "sweep-work"}} in pod["volumes"]
    assert {"name": "work", "mountPath": "/var/lib/sweep"} in container["volumeMounts"]
    command = container["command"]
    # a relative folder goes on the volume; an absolute one is the user's choice
    assert command[command.index("--checkpoint-dir") + 1] == "/var/lib/sweep/checkpoints"
    assert command[command.index("--artifact-dir") + 1] == "/abs/artifacts"


@pytest.mark.parametrize("option, value, message", [
    ("cpus_per_worker", 0, "--cpus-per-worker 0: expected a number above 0"),
    ("memory_per_worker", "4 GB", "--memory-per-worker '4 GB': expected a quantity"),
    ("volume_claim", "My_Claim", "--volume-claim 'My_Claim': expected the name"),
])
def test_bad_requests_and_claims_are_usage_errors(cluster_job, option, value, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        cluster_job("kubernetes", **{option: value})


def test_the_stock_image_is_a_warning_and_lost_files_are_said(cluster_job, tmp_path, capsys):
    # before: `image: sweep:latest` silently, and nothing said the pods' pictures die with them
    study = str(tmp_path / "study.yaml")
    cluster_job()  # writes the study file, enters tmp_path
    args = ["submit", study, "--scheduler", "kubernetes", "--storage", SUBMIT_URL, "--dry-run"]
    assert main(args) == 0
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("sweep: warning: no --image: pods run sweep:latest")
    assert main([*args, "--image", "registry.example/sweep:1"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*args[:-1], "--image", "registry.example/sweep:1"]) == 0
    assert "checkpoints and pictures are lost with each pod: --volume-claim NAME keeps them" \
        in capsys.readouterr().out


@pytest.mark.parametrize("text, limit, name", [
    ("sweep-My_Study.v2", 63, "sweep-my-study-v2"),
    ("sweep-" + "x" * 80, 52, "sweep-" + "x" * 46),
    ("sweep-a_-_b", 63, "sweep-a-b"),
])
def test_names_are_dns_labels(text, limit, name):
    assert kubernetes.name_for(text, limit) == name


def test_cli_writes_the_manifests_and_says_how_to_apply_them(cluster_job, tmp_path, capsys):
    study = str(tmp_path / "study.yaml")
    cluster_job()  # writes the study file, enters tmp_path
    assert main(["submit", study, "--scheduler", "kubernetes", "--workers", "2",
                 "--storage", f"postgresql+psycopg://sweep:{SUBMIT_PASSWORD}@db:5432/s"]) == 0
    out, err = capsys.readouterr()
    folder = tmp_path / "reports" / "tiny"
    assert f"kubectl apply -f {folder}/kubernetes-secret.yaml -f {folder}/kubernetes-job.yaml" \
        in out
    assert SUBMIT_PASSWORD not in out + err
    assert SUBMIT_PASSWORD not in (folder / "kubernetes-job.yaml").read_text()
    assert stat.S_IMODE(os.stat(folder / "kubernetes-secret.yaml").st_mode) == 0o600


def test_unschedule_is_for_slurm_only(capsys, cluster_job, tmp_path):
    cluster_job()
    assert main(["submit", str(tmp_path / "study.yaml"), "--scheduler", "kubernetes",
                 "--unschedule"]) == 2
    assert "kubectl delete cronjob sweep-tiny" in capsys.readouterr().err


HYPERMODEL = """import keras
def build_model(hp):
    return keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(hp.Choice("units", [4, 8])),
                             keras.layers.Dense(10)])
"""


def _hyper_study(tmp_path, tiny_npz, ref: str) -> dict:
    from conftest import tiny_study

    raw = tiny_study(tiny_npz, dataset={"name": "digits"}, search={"params": {}})
    raw["model"] = {"hypermodel": ref}
    return raw


def test_a_hypermodel_file_travels_in_the_configmap_at_its_relative_path(cluster_job,
                                                                           tmp_path, tiny_npz):
    # before: only study.yaml was shipped, and every pod failed to import the hypermodel
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "cnn.py").write_text(HYPERMODEL)
    job = cluster_job(
        "kubernetes", raw=_hyper_study(tmp_path, tiny_npz, "models/cnn.py:build_model")
    )
    configmap, job_doc = _load(SCHEDULERS["kubernetes"].render(job)["kubernetes-job.yaml"])
    assert configmap["data"]["hypermodel.py"] == HYPERMODEL
    (volume,) = job_doc["spec"]["template"]["spec"]["volumes"]
    assert volume["configMap"]["items"] == [{"key": "study.yaml", "path": "study.yaml"},
                                            {"key": "hypermodel.py", "path": "models/cnn.py"}]


def test_files_pods_cannot_see_are_refused_at_submit_time(cluster_job, tmp_path, tiny_npz):
    from conftest import tiny_study

    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.py"
    outside.write_text(HYPERMODEL)
    with pytest.raises(UsageError, match=r"model.hypermodel: .* is outside the study file's "
                                         r"folder"):
        cluster_job("kubernetes", raw=_hyper_study(tmp_path, tiny_npz, f"{outside}:build_model"))
    with pytest.raises(UsageError, match=r"dataset.path: .*tiny.npz is a path on this machine, "
                                         r"which pods do not see"):
        cluster_job("kubernetes", raw=tiny_study(tiny_npz))
    # data inside a custom image, at an absolute path: accepted
    job = cluster_job("kubernetes", raw=tiny_study(tiny_npz), image="registry.example/data:1")
    assert job.data_path == str(tiny_npz)
