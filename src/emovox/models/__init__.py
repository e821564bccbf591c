"""Models: classical baselines (:mod:`emovox.models.classical`) and, later,
neural architectures and their artifacts.

Submodules are imported on demand so that ``import emovox.models`` stays cheap
(no scikit-learn or torch at import time).
"""
