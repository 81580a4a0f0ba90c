"""Helpers shared by the tests (fixtures are in tests/conftest.py). Test modules import from here, never
from one another: ``from common_utils import TINY_RUN, datasource, dora``.

Importing this package imports nothing of audiocraft_mmd (the helpers import it inside their
functions): :mod:`common_utils.probe_worker`, unpickled in worker processes, checks what those
processes get from audiocraft_mmd itself.
"""

from .audio import SAMPLE_RATE, write_egs, write_tones
from .checkpoints import build_checkpoint
from .configs import CODEC_16K, PATTERNS, PLAIN_CODEC, RECIPE, TINY_CODEC, TINY_LM, TINY_RUN, lm_config, mmd_cfg
from .distributed import check_two_processes_match_one, on_two_processes
from .dora import SPLITS, datasource, dora, run_new_xp, without_durations
from .gpu import AUTOCAST_DTYPES, GPU_ESTIMATORS
from .grids import slurm_requests, status_lines
from .paths import ASSETS, REPO
from .probe_worker import ProbeDataset, probe
from .references import brute_force_hsic
from .requirements import in_ci, require_modules, unavailable
from .slurm_cluster import ClusterUnavailable, single_node_cluster
from .solvers import train_steps
from .study_measurements import codec_measurement, dependence_report, lm_measurement, provenance
from .synthetic_codes import fitted_predictor, vector_autoregression

__all__ = [
    "ASSETS", "AUTOCAST_DTYPES", "CODEC_16K", "ClusterUnavailable", "GPU_ESTIMATORS", "PATTERNS", "PLAIN_CODEC",
    "ProbeDataset", "RECIPE", "REPO", "SAMPLE_RATE", "SPLITS", "TINY_CODEC", "TINY_LM", "TINY_RUN", "brute_force_hsic",
    "build_checkpoint",
    "check_two_processes_match_one", "codec_measurement", "datasource", "dependence_report", "dora",
    "fitted_predictor", "in_ci", "lm_config", "lm_measurement", "mmd_cfg", "on_two_processes", "probe",
    "provenance", "require_modules", "run_new_xp", "single_node_cluster", "slurm_requests", "status_lines",
    "train_steps", "unavailable", "vector_autoregression", "without_durations", "write_egs", "write_tones",
]
