"""Stage 9, the report: data first, figures second, files last (Optuna's visualization).
``frames`` reads a study into pandas frames; ``figures`` draws them with plotly; ``html``
writes the self-contained report and the exports; ``status`` answers ``sweep status``;
``dashboard`` serves optuna-dashboard and saves the figures into the study for it.

No Keras here: reading a stored study never loads TensorFlow.
"""

from sweep.report.frames import StudyResult, load_study_result
from sweep.report.figures import compare_figures, grouped_figure, report_figures
from sweep.report.html import (
    compare_studies, export, export_model, write_comparison, write_report,
)
from sweep.report.status import study_status

__all__ = [
    "StudyResult", "compare_figures", "compare_studies", "export", "export_model",
    "grouped_figure", "load_study_result", "report_figures", "study_status",
    "write_comparison", "write_report",
]
