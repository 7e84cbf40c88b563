"""fcnlab: the FCN family and DeepLabv3/v3+ for semantic segmentation, faithful and fast."""

from fcnlab import explain  # the package is callable: fcnlab.explain(...) is explain.explain
from fcnlab._version import __version__
from fcnlab.errors import FcnlabError
from fcnlab.models import Segmenter, create_model, list_models
from fcnlab.models.transfer import InitReport, init_from

__all__ = [
    "FcnlabError",
    "InitReport",
    "Segmenter",
    "__version__",
    "create_model",
    "explain",
    "init_from",
    "list_models",
]
