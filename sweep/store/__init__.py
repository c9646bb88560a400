"""Stage 6, storage: Optuna's RDB storage (SQLite or PostgreSQL) with sweep's two tables
(``tables``), opened by ``engine``; a study's lifecycle and the one reader of what sweep
stores on it (``studies``); the keys of what it stores (``records``); the epochs table
(``epochs``); which worker runs which point (``claims``); the trials read in bulk
(``trials``); where a study's files live (``files``). All of sweep's SQL is in this
package."""

from sweep.store.engine import (
    open_storage,
    safe_url,
    split_password,
    storage_label,
    with_password_file,
)
from sweep.store.epochs import epochs_frame, record_epoch
from sweep.store.files import existing_folder, marker, report_name, study_folder, study_ids
from sweep.store.studies import (
    StoredStudy,
    artifact_file,
    artifact_store,
    check_study,
    create_study,
    existing_study,
    mark_dead,
    mark_superseded,
    open_study,
    record_class_names,
    replace_study_system_attrs,
    set_trial_user_attrs,
    study_system_attr,
)
from sweep.store.trials import (
    LiveTrials,
    StoredTrial,
    count_trials,
    forget_artifacts,
    read_trials,
    trials_version,
)

__all__ = [
    "LiveTrials", "StoredStudy", "StoredTrial", "artifact_file", "artifact_store", "check_study",
    "count_trials", "create_study", "epochs_frame", "existing_folder", "existing_study",
    "forget_artifacts", "marker",
    "mark_dead", "mark_superseded", "open_storage", "open_study", "read_trials",
    "record_class_names", "record_epoch", "replace_study_system_attrs", "report_name",
    "safe_url", "set_trial_user_attrs", "split_password", "storage_label", "study_folder",
    "study_ids", "study_system_attr",
    "trials_version", "with_password_file",
]
