"""Models: classifiers on feature vectors (:mod:`emovox.models.classifiers`),
frozen-encoder feature sets (:mod:`emovox.models.embedding_features`), neural
architectures and their artifacts.

Submodules are imported on demand so that ``import emovox.models`` stays cheap
(no scikit-learn or torch at import time).
"""
