"""Models: architectures, estimators and their (de)serialisation.

The estimators behind the workbench's classifiers and regressors
(:mod:`emovox.models.classifiers`, :mod:`emovox.models.regressors`: specs,
defaults, grids, scaling), frozen-encoder feature sets
(:mod:`emovox.models.embedding_features`), neural architectures and their
artifacts. Nothing here chooses or trains a model by cross-validation or with
the training engine: the workbench's per-fold models are in
:mod:`emovox.evaluation.workbench_models`, the Whisper heads' fitting in
:mod:`emovox.training.whisper_fit`.

Submodules are imported on demand so that ``import emovox.models`` stays cheap
(no scikit-learn or torch at import time).
"""
