"""Tests of grader.toolkit.data and the bundled digits file."""

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.toolkit import DigitsSplit, load_digits
from grader.toolkit.data import _raw

ROOT = Path(__file__).resolve().parents[2]


def test_default_split_shapes_and_dtypes():
    d = load_digits()
    assert isinstance(d, DigitsSplit)
    assert d.classes == 10
    for X, y, n in (
        (d.X_train, d.y_train, 200),
        (d.X_val, d.y_val, 500),
        (d.X_test, d.y_test, 1097),
    ):
        assert X.shape == (n, 64) and X.dtype == np.float64
        assert y.shape == (n,) and y.dtype == np.int64
        assert y.min() >= 0 and y.max() <= 9
    assert "train=200" in repr(d)


def test_splits_partition_the_data_set():
    d = load_digits(n_train=300, n_val=400, standardize=False)
    images, labels = _raw()
    X = np.vstack([d.X_train, d.X_val, d.X_test]) * 16
    y = np.concatenate([d.y_train, d.y_val, d.y_test])
    assert np.allclose(X, np.round(X))
    # same multiset of (image, label) rows as the bundled file
    got = np.column_stack([np.round(X), y]).astype(np.int64)
    want = np.column_stack([images, labels]).astype(np.int64)
    assert np.array_equal(got[np.lexsort(got.T)], want[np.lexsort(want.T)])


def test_split_is_stratified():
    _, labels = _raw()
    share = np.bincount(labels) / len(labels)
    for seed in range(5):
        for n_train in (10, 50, 200, 1000):
            d = load_digits(n_train=n_train, n_val=100, seed=seed)
            counts = np.bincount(d.y_train, minlength=10)
            assert np.all(np.abs(counts - n_train * share) <= 2), (seed, n_train, counts)


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.X_train, c.X_train)


def test_standardised_with_training_statistics():
    d = load_digits(n_train=200, n_val=500)
    raw = load_digits(n_train=200, n_val=500, standardize=False)
    varying = raw.X_train.std(axis=0) >= 1e-8
    assert np.allclose(d.X_train.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(d.X_train.std(axis=0)[varying], 1)
    # the training statistics are applied to the other splits
    assert np.allclose(d.X_val, (raw.X_val - d.mean) / d.std)
    assert np.allclose(d.X_test, (raw.X_test - d.mean) / d.std)
    # pixels constant on the training split are only centred, not blown up by a tiny std
    assert (~varying).any()
    assert np.all(d.std[~varying] == 1.0)
    assert np.all(np.isfinite(d.X_val)) and np.abs(d.X_val).max() < 100


def test_unstandardised_values_are_in_unit_interval():
    d = load_digits(standardize=False)
    for X in (d.X_train, d.X_val, d.X_test):
        assert X.min() >= 0 and X.max() <= 1
    assert np.array_equal(d.mean, np.zeros(64)) and np.array_equal(d.std, np.ones(64))


def test_edge_sizes():
    d = load_digits(n_train=1797, n_val=0)
    assert d.X_val.shape == (0, 64) and d.X_test.shape == (0, 64)
    d = load_digits(n_train=1, n_val=0, standardize=True)
    assert np.all(np.isfinite(d.X_test))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 0}, "n_train must be at least 1"),
        ({"n_train": -5}, "n_train must be at least 1"),
        ({"n_val": -1}, "n_val must be at least 0"),
        ({"n_train": 1500, "n_val": 400}, "at most 1797"),
        ({"n_train": 2.5}, "n_train must be an integer"),
        ({"n_train": True}, "n_train must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.0}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_digits(**kwargs)


def test_bundled_arrays_match_readme_checksums():
    readme = (ROOT / "grader" / "datasets" / "README.md").read_text()
    images, labels = _raw()
    assert images.dtype == np.uint8 and images.shape == (1797, 64)
    assert labels.dtype == np.uint8 and labels.shape == (1797,)
    assert images.max() == 16 and images.min() == 0
    assert np.array_equal(np.bincount(labels), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    for a in (images, labels):
        assert hashlib.sha256(a.tobytes()).hexdigest() in readme


def test_export_script_reproduces_the_file(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "digits.npz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_digits.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    with np.load(out) as new, np.load(ROOT / "grader" / "datasets" / "digits.npz") as old:
        for key in ("images", "labels"):
            assert np.array_equal(new[key], old[key]) and new[key].dtype == old[key].dtype


def test_loads_from_a_zipped_install_without_the_source_tree(tmp_path):
    """importlib.resources finds the data when the package is not a folder on disk."""
    archive = tmp_path / "kit.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("grader/__init__.py", "")
        for sub in ("toolkit", "datasets"):
            for path in (ROOT / "grader" / sub).iterdir():
                if path.suffix in (".py", ".npz"):
                    z.write(path, f"grader/{sub}/{path.name}")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import grader.toolkit as t;"
        "assert t.__file__.startswith(sys.argv[1]), t.__file__;"
        "d = t.load_digits(); print(d.X_train.shape, 'matplotlib' in sys.modules,"
        " any(m.split('.')[0] in ('reference', 'solutions', 'sklearn') for m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-I", "-c", code, str(archive)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    # importing the toolkit pulls in neither matplotlib (plots are lazy) nor the references
    assert res.stdout.strip() == "(200, 64) False False"
    assert res.stderr == ""


def test_toolkit_source_never_imports_reference_solutions():
    for path in (ROOT / "grader" / "toolkit").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(reference|solutions)\b", text, re.M), path
