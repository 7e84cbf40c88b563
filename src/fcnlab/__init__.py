"""fcnlab: the FCN family and DeepLabv3/v3+ for semantic segmentation, faithful and fast."""

from fcnlab.errors import FcnlabError
from fcnlab.models import Segmenter, create_model, list_models
from fcnlab.models.transfer import InitReport, init_from

__version__ = "0.1.0"

__all__ = [
    "FcnlabError",
    "InitReport",
    "Segmenter",
    "__version__",
    "create_model",
    "init_from",
    "list_models",
]
