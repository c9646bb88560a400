"""Stage 8, launching: a study's workers as cluster batch jobs. ``submit`` plans and checks
a ``ClusterJob``; each ``Scheduler`` (the contract in ``_base``) renders and launches it:
``slurm`` (job arrays, scrontab), ``kubernetes`` (Indexed Jobs, CronJobs)."""

from sweep.launch._base import ClusterJob, Scheduler
from sweep.launch.submit import SCHEDULERS, plan_job, submit, unschedule

__all__ = ["SCHEDULERS", "ClusterJob", "Scheduler", "plan_job", "submit", "unschedule"]
