"""Stage 8, launching: a study's workers as cluster batch jobs. ``submit`` plans and checks
a ``ClusterJob``; each ``Scheduler`` (the contract in ``_base``) renders and launches it:
``slurm`` (job arrays, scrontab), ``kubernetes`` (Indexed Jobs, CronJobs); ``options``
declares ``sweep submit``'s options.

The names below load their module (and the storage's SQLAlchemy) on first use, so the CLI
reads ``options`` without them. The function ``submit`` is ``sweep.launch.submit.submit``
(a lazy name cannot shadow its own module).
"""

from sweep._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ClusterJob": "sweep.launch._base",
    "Scheduler": "sweep.launch._base",
    "SCHEDULERS": "sweep.launch.submit",
    "plan_job": "sweep.launch.submit",
    "unschedule": "sweep.launch.submit",
    "warnings": "sweep.launch.submit",
})
