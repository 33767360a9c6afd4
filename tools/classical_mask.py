"""The classical change mask: no weights, CPU only, one parameter set for every sensor and resolution.

The implementation lives in :mod:`tools.change_detection` (one module per job); this module is the stable import
path the agent, the batch runner and the provider specs use.
"""

from tools.change_detection.detector import ClassicalAnalysis, analyse, change_score
from tools.change_detection.provider import ClassicalMaskProvider
from tools.change_detection.settings import ClassicalSettings

__all__ = ["ClassicalAnalysis", "ClassicalMaskProvider", "ClassicalSettings", "analyse", "change_score"]
