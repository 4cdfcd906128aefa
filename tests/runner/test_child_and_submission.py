"""The untrusted side (cells, values on the wire) and the reading of submitted notebooks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader.runner import child, submission
from grader.runner.submission import (
    SubmissionError,
    definitions_only,
    identify,
    read_notebook,
    select_cells,
)


# --------------------------------------------------------------------------- child
def test_a_failing_statement_does_not_stop_the_rest_of_the_cell():
    namespace = child.new_namespace()
    ready = child.execute_cells(
        namespace,
        [{"index": 2, "source": "import not_a_module\nx = 1 / 0\ndef f():\n    return 3"}],
        1000,
    )
    assert namespace["f"]() == 3
    assert [(e["cell"], e["type"]) for e in ready["cell_errors"]] == [
        (2, "ModuleNotFoundError"),
        (2, "ZeroDivisionError"),
    ]
    assert "<cell 2>, line 2" in ready["cell_errors"][1]["trace"]


def test_a_syntax_error_is_one_error():
    ready = child.execute_cells(child.new_namespace(), [{"index": 0, "source": "def f(:\n"}], 100)
    assert [e["type"] for e in ready["cell_errors"]] == ["SyntaxError"]


def test_ndarray_subclasses_are_reduced_to_their_numbers():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

        def __array__(self, dtype=None, copy=None):
            return np.zeros(self.shape)

    encoded = child.encode_value(np.arange(3.0).view(Liar))
    assert encoded["type"] == "Liar"
    assert child.decode_array(encoded["data"]).tolist() == [0.0, 1.0, 2.0]
    assert type(child.decode_array(encoded["data"])) is np.ndarray


def test_huge_and_unsupported_values_are_not_sent():
    assert child.encode_value(np.zeros(child.MAX_ELEMENTS + 1))["kind"] == "unsupported"
    assert child.encode_value(np.array(["a"]))["kind"] == "unsupported"
    assert child.encode_value({"a": 1})["kind"] == "unsupported"
    assert child.encode_value(object())["kind"] == "unsupported"


def test_run_case_catches_system_exit():
    namespace = child.new_namespace()
    exec("import sys\ndef f():\n    sys.exit(4)", namespace)
    event = child.run_case(
        namespace,
        {"key": "k", "plan": [{"call": "f", "out": "y"}], "returns": {"y": {"var": "y"}}},
        {},
        100,
    )
    assert event["error"]["type"] == "SystemExit"


# --------------------------------------------------------------------------- submission
def cell(source, metadata=None, kind="code"):
    return {"cell_type": kind, "metadata": metadata or {}, "source": source, "outputs": []}


def test_cell_selection_by_nbgrader_metadata_then_kit_role_then_definitions():
    notebook = {
        "cells": [
            cell("import numpy as np\nx = np.ones(3)", {"dnn_kit": {"role": "setup"}}),
            cell("def a():\n    return 1", {"nbgrader": {"solution": True, "grade": False}}),
            cell("check('a')", {"nbgrader": {"solution": False, "grade": True}}),
            cell("def b():\n    return 2", {"dnn_kit": {"role": "solution"}}),
            cell("plot(a())", {"dnn_kit": {"role": "experiment"}}),
            cell("import math\nY = 2\n\n@decorate(3)\ndef c():\n    return 3\nc()\nz = c()"),
            cell("%matplotlib inline\ndef d():\n    return 4", {"nbgrader": {"solution": True}}),
            cell("# a note", kind="markdown"),
        ]
    }
    cells, notes = select_cells(notebook)
    assert [c["index"] for c in cells] == [1, 3, 5, 6]
    assert cells[2]["source"] == "import math\nY = 2\n\n@decorate(3)\ndef c():\n    return 3\n"
    assert cells[3]["source"] == "\ndef d():\n    return 4"
    assert notes == [
        "cell 6: IPython magics and shell commands were skipped",
        "cells without grading metadata (5): only their imports and definitions were run",
    ]


def test_definitions_only_keeps_line_numbers():
    source = "run()\ndef f():\n    return 1\nrun()"
    assert definitions_only(source) == "\ndef f():\n    return 1\n"


def test_reading_limits_and_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", 100)
    big = tmp_path / "big.ipynb"
    big.write_text(json.dumps({"cells": [], "pad": "x" * 200}))
    with pytest.raises(SubmissionError, match="is 0 MiB; the limit is 0 MiB"):
        read_notebook(big)
    deep = tmp_path / "deep.ipynb"
    deep.write_text("[" * 50 + "]" * 50)
    with pytest.raises(SubmissionError, match="not a Jupyter notebook"):
        read_notebook(deep)
    missing = tmp_path / "missing.ipynb"
    with pytest.raises(SubmissionError, match="cannot read missing.ipynb"):
        read_notebook(missing)


def test_identify_by_metadata_path_then_functions(tmp_path):
    notebook = {"metadata": {"dnn_kit": {"assignment": "02_dropout"}}, "cells": []}
    assert identify(notebook, tmp_path / "x.ipynb") == ("02_dropout", "metadata")
    notebook = {"metadata": {"dnn_kit": {"assignment": ["junk"]}}, "cells": []}
    assert identify(notebook, tmp_path / "02_dropout" / "x.ipynb") == ("02_dropout", "path")
    notebook = {"metadata": [], "cells": [cell("def dropout_backward(d, c):\n    return d")]}
    assert identify(notebook, tmp_path / "x.ipynb") == ("02_dropout", "functions")


def test_arrays_round_trip_through_the_fast_header_parser(monkeypatch):
    arrays = [
        np.arange(6.0).reshape(2, 3),
        np.float64(3.5),
        np.zeros((0,)),
        np.zeros((3, 0)),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(5, dtype=np.int32),
        np.array([True, False]),
        np.arange(4, dtype=">f8"),
        np.ones((2, 2), np.float32),
        np.zeros((2, 3, 4, 5)),
    ]
    encoded = [child.encode_array(np.asarray(a)) for a in arrays]
    original_load = np.load

    def no_load(*args, **kwargs):
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(child.np, "load", no_load)
    for array, text in zip(arrays, encoded, strict=True):
        decoded = child.decode_array(text)
        assert decoded.dtype == np.asarray(array).dtype and decoded.shape == np.shape(array)
        assert np.array_equal(decoded, array) and decoded.flags.writeable
    monkeypatch.setattr(child.np, "load", original_load)
    import base64

    cut = base64.b64encode(base64.b64decode(child.encode_array(np.arange(4.0)))[:-8]).decode()
    with pytest.raises(ValueError):
        child.decode_array(cut)  # a truncated array is refused, not misread
    complex_text = child.encode_array(np.array([1 + 2j]))
    assert child.decode_array(complex_text).tolist() == [1 + 2j]  # other dtypes: np.load


def test_npy_bytes_are_what_np_save_writes():
    """The child writes plain numeric headers itself; ``np.save`` is the oracle."""
    import io

    arrays = [
        np.float64(2.5),
        np.arange(3.0),
        np.zeros((0,)),
        np.zeros((3, 0)),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(6.0).reshape(2, 3)[:, ::2],
        np.arange(5, dtype=np.int32),
        np.array([True, False]),
        np.arange(4, dtype=">f8"),
        np.ones((2, 2), np.float32),
        np.zeros((2, 3, 4, 5)),
        np.zeros((1,) * 20),
        np.array([1 + 2j]),
    ]
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        assert child.npy_bytes(np.asarray(array)) == buffer.getvalue(), array
        decoded = child.decode_array(child.npy_bytes(np.asarray(array)))
        assert decoded.dtype == np.asarray(array).dtype and np.array_equal(decoded, array)


def test_a_batch_request_gets_its_arrays_as_binary_frames():
    """``"frames": true``: each event is one JSON line naming its arrays by frame number, the
    frames right after it; without it (the self-check) arrays stay base64 text in the line."""
    import io

    class Sink(io.BytesIO):
        def close(self):
            pass

    case = {
        "key": "k",
        "plan": [{"call": "f", "args": [{"in": "x"}], "out": "y"}],
        "returns": {"y": {"var": "y"}, "x": {"in": "x"}},
        "inputs": {"x": child.encode_array(np.arange(6.0).reshape(2, 3))},
    }
    source = "def f(x):\n    return [x * 2, 7]"
    for frames in (True, False):
        sink = Sink()
        request = {"cells": [{"index": 0, "source": source}], "cases": [case], "frames": frames}
        child.serve(request, sink)
        data = sink.getvalue()
        ready, rest = data.split(b"\n", 1)
        assert json.loads(ready)["event"] == "ready"
        line, rest = rest.split(b"\n", 1)
        event = json.loads(line)
        outputs = event["outputs"]
        if frames:
            lengths = event["frames"]
            blobs, offset = [], 0
            for n in lengths:
                blobs.append(rest[offset : offset + n])
                offset += n
            assert json.loads(rest[offset:]) == {"event": "done"}
            y = [child.decode_array(blobs[item["data"]]) for item in outputs["y"]["items"]]
            x = child.decode_array(blobs[outputs["x"]["data"]])
            assert sorted([outputs["x"]["data"]] + [i["data"] for i in outputs["y"]["items"]]) == [
                0,
                1,
                2,
            ]
        else:
            assert "frames" not in event
            y = [child.decode_array(item["data"]) for item in outputs["y"]["items"]]
            x = child.decode_array(outputs["x"]["data"])
        expected = np.arange(6.0).reshape(2, 3)
        assert np.array_equal(x, expected) and np.array_equal(y[0], 2 * expected)
        assert y[1].item() == 7
