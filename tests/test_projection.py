"""2-D projections of a feature space (PCA, t-SNE, UMAP) and their plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation.projection import plot_projection, project, projection_names, standardize

PNG = b"\x89PNG\r\n\x1a\n"


def two_clusters(n: int = 60, d: int = 20, seed: int = 0, informative: int = 4):
    """Two clusters told apart by 4 small-scale columns; the other columns are noise on far larger scales."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 50.0, size=d)  # scales differ: standardising matters
    for c in range(informative):  # a few small-scale columns carry the split
        X[:, c] = rng.normal(scale=0.5, size=n) + 4.0 * y
    return X, y


def separated(points: np.ndarray, y: np.ndarray) -> bool:
    """Whether some threshold on the first coordinate splits the two clusters perfectly."""
    a, b = points[y == 0, 0], points[y == 1, 0]
    return a.max() < b.min() or b.max() < a.min()


def neighbour_purity(points: np.ndarray, y: np.ndarray) -> float:
    """Share of points whose nearest other point (in 2-D) has the same label."""
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    return float(np.mean(y[dist.argmin(axis=1)] == y))


def test_names_and_unknown_method():
    assert {"pca", "tsne", "umap"} <= set(projection_names())
    with pytest.raises(ConfigError, match="unknown projection 'isomap'.*pca"):
        project(np.zeros((5, 3)), "isomap")
    with pytest.raises(ConfigError, match="at least 3 samples"):
        project(np.zeros((2, 3)), "pca")


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_shape_and_determinism(method):
    X, _ = two_clusters()
    a = project(X, method, seed=3)
    assert a.shape == (len(X), 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, project(X, method, seed=3))


def test_pca_separates_two_clusters_despite_wild_scales():
    X, y = two_clusters()
    assert separated(project(X, "pca"), y)
    # Without standardisation the high-variance noise columns would dominate the first axis.
    from sklearn.decomposition import PCA

    assert not separated(PCA(n_components=2).fit_transform(X), y)


def test_tsne_on_few_points_clips_perplexity_and_separates():
    X, y = two_clusters(n=8)
    points = project(X, "tsne", seed=0)
    assert points.shape == (8, 2)
    X, y = two_clusters(n=80, d=60, informative=20)  # wider than 50: reduced by PCA first
    assert neighbour_purity(project(X, "tsne", seed=0), y) >= 0.95
    shuffled = np.random.default_rng(0).permutation(y)  # the check itself is not trivially met
    assert neighbour_purity(project(X, "tsne", seed=0), shuffled) < 0.8


def test_non_finite_values_and_constant_columns_are_guarded():
    X, y = two_clusters()
    X[3, 5] = np.nan
    X[7, 2] = np.inf
    X[:, 4] = 7.0
    Z = standardize(X)
    assert np.isfinite(Z).all() and np.allclose(Z[:, 4], 0.0)
    assert np.isfinite(project(X, "pca")).all()
    one = project(X[:, :1], "pca")  # a single feature: x = its value, y = 0
    assert one.shape == (60, 2) and np.allclose(one[:, 1], 0.0)


def test_umap_path():
    pytest.importorskip("umap")
    X, y = two_clusters(n=60, informative=10)
    a = project(X, "umap", seed=1)
    assert a.shape == (60, 2) and np.isfinite(a).all()
    np.testing.assert_allclose(a, project(X, "umap", seed=1))
    assert neighbour_purity(a, y) >= 0.95


def test_umap_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'emovox\[explore\]'") as info:
        project(np.random.default_rng(0).normal(size=(10, 4)), "umap")
    assert "\n" not in str(info.value)


def test_plot_projection_writes_pngs(tmp_path):
    X, y = two_clusters()
    points = project(X, "pca")
    emotions = np.where(y == 1, "angry", "sad")
    path = plot_projection(points, emotions, tmp_path / "e.png", title="two clusters", kind="emotion")
    assert path.read_bytes()[:8] == PNG
    many = [f"spk{i % 30:02d}" for i in range(len(points))]  # 30 speakers: drawn without a legend
    assert plot_projection(points, many, tmp_path / "s.png", title="t", kind="speaker").read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match="unknown colouring 'gender'"):
        plot_projection(points, emotions, tmp_path / "x.png", title="t", kind="gender")
    with pytest.raises(ConfigError, match="points"):
        plot_projection(points[:5], emotions, tmp_path / "x.png", title="t", kind="emotion")
    assert not (tmp_path / "x.png").exists()
