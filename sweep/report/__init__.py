"""Stage 9, the report: data first, figures second, files last (Optuna's visualization).
``frames`` reads a study into pandas frames; ``figures`` draws them with plotly; ``html``
writes the self-contained report, ``exports`` the csv/parquet frame and kept models;
``status`` answers ``sweep status``; ``effects``, ``interactions``, ``importance`` and
``summary`` answer the study's question (which knobs matter, by how much, beyond noise) and
``effect_figures`` draws it; ``dashboard`` serves optuna-dashboard and saves the figures into
the study for it.

No Keras here: reading a stored study never loads TensorFlow.
"""

from sweep._lazy import lazy_exports

# each name loads its module on first use: ``sweep status`` needs neither pandas nor plotly
__getattr__, __all__ = lazy_exports(__name__, {
    "StudyResult": "sweep.report.frames",
    "load_study_result": "sweep.report.frames",
    "compare_figures": "sweep.report.figures",
    "grouped_figure": "sweep.report.figures",
    "report_figures": "sweep.report.figures",
    "compare_studies": "sweep.report.html",
    "export": "sweep.report.exports",
    "export_model": "sweep.report.exports",
    "report_study": "sweep.report.html",
    "write_comparison": "sweep.report.html",
    "write_report": "sweep.report.html",
    "study_status": "sweep.report.status",
    "study_answer": "sweep.report.summary",
})
