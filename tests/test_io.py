"""Loading weights: every format, PyTorch orientation, and one-line errors for bad files."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from optinc_compiler.errors import InputError, MissingDependencyError
from optinc_compiler.io import load_weights


def test_npy_is_one_layer_named_after_the_file(tmp_path):
    w = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "fc.npy", w)
    loaded = load_weights(tmp_path / "fc.npy")
    assert [x.name for x in loaded.layers] == ["fc"]
    np.testing.assert_array_equal(loaded.layers[0].matrix, w)


def test_npz_state_dict_keeps_order_strips_weight_and_skips_biases(tmp_path):
    np.savez(
        tmp_path / "m.npz",
        **{"fc1.weight": np.ones((4, 3)), "fc1.bias": np.ones(4), "fc2.weight": np.ones((2, 4))},
    )
    loaded = load_weights(tmp_path / "m.npz")
    assert [x.name for x in loaded.layers] == ["fc1", "fc2"]
    assert loaded.skipped == ("fc1.bias",)
    assert loaded.layers[0].matrix.shape == (4, 3)  # (out, in) as stored


def test_layer_selection_by_name_or_key(tmp_path):
    np.savez(tmp_path / "m.npz", a=np.eye(2), **{"b.weight": np.eye(3)})
    assert [x.name for x in load_weights(tmp_path / "m.npz", layers=["b.weight", "a"]).layers] == ["b", "a"]
    with pytest.raises(InputError, match=r"no layer 'c' in '.*m.npz'; layers: 'a', 'b'"):
        load_weights(tmp_path / "m.npz", layers=["c"])


def test_csv_real_and_complex(tmp_path):
    (tmp_path / "r.csv").write_text("# a comment\n1,2\n3,4.5\n")
    np.testing.assert_array_equal(load_weights(tmp_path / "r.csv").layers[0].matrix, [[1, 2], [3, 4.5]])
    (tmp_path / "c.csv").write_text("1+2j,0\n0,1j\n")
    np.testing.assert_array_equal(load_weights(tmp_path / "c.csv").layers[0].matrix, [[1 + 2j, 0], [0, 1j]])


def test_safetensors(tmp_path):
    from safetensors.numpy import save_file

    save_file(
        {"layer.weight": np.ones((3, 2), dtype=np.float32), "layer.bias": np.zeros(3, dtype=np.float32)},
        str(tmp_path / "m.safetensors"),
    )
    loaded = load_weights(tmp_path / "m.safetensors")
    assert [x.name for x in loaded.layers] == ["layer"]
    assert loaded.skipped == ("layer.bias",)


def test_pytorch_state_dict_keeps_out_in_orientation(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load_weights(tmp_path / "m.pt")
    assert [x.name for x in loaded.layers] == ["0", "2"]
    assert loaded.layers[0].matrix.shape == (5, 3)
    np.testing.assert_array_equal(loaded.layers[1].matrix, model[2].weight.detach().numpy())


@pytest.mark.parametrize(
    ("module", "suffix", "extra"), [("torch", ".pt", "torch"), ("safetensors", ".safetensors", "safetensors")]
)
def test_missing_optional_library_names_the_extra(tmp_path, monkeypatch, module, suffix, extra):
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, f"{module}.numpy", None)
    (tmp_path / f"m{suffix}").write_bytes(b"x")
    with pytest.raises(MissingDependencyError, match=rf"pip install 'optinc-compiler\[{extra}\]'"):
        load_weights(tmp_path / f"m{suffix}")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.npy", b"", r"weights file '.*e.npy' is empty"),
        (
            "t.npy",
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (4, 4), }"
            + b" " * 40
            + b"\n"
            + b"\0" * 16,
            r"is not a readable .npy file",
        ),
        ("x.npy", b"hello world, not numpy", r"is not a readable .npy file"),
        ("x.npz", b"PK\x03\x04garbage", r"is not a readable .npz file"),
        (
            "x.csv",
            b"1,2\na,b\n",
            r"is not a numeric CSV matrix .*allowed: comma-separated real or complex numbers",
        ),
        ("x.pt", b"not a pickle", r"is not a readable PyTorch file"),
        ("x.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}", r"is not a readable .safetensors file"),
    ],
)
def test_broken_files(tmp_path, name, content, message):
    if name.endswith(".pt"):
        pytest.importorskip("torch")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_weights(tmp_path / name)
    assert "\n" not in str(info.value)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[object()]], dtype=object), allow_pickle=True)
    with pytest.raises(
        InputError,
        match=r"array 'o' has dtype \|O; allowed: integer, real or complex numbers \(or booleans\)",
    ):
        load_weights(tmp_path / "o.npy")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match=r"weights file '.*nope.npy' does not exist"):
        load_weights(tmp_path / "nope.npy")
    (tmp_path / "w.mat").write_text("1")
    with pytest.raises(
        InputError, match=r"has suffix '.mat'; allowed: .npy, .npz, .csv, .safetensors, .pt, .pth"
    ):
        load_weights(tmp_path / "w.mat")


def test_file_of_biases_only(tmp_path):
    np.savez(tmp_path / "b.npz", **{"a.bias": np.ones(2), "b.bias": np.ones(3)})
    with pytest.raises(InputError, match=r"holds no weight matrix \(only a.bias, b.bias\)"):
        load_weights(tmp_path / "b.npz")


@pytest.mark.parametrize("key", ["", ".weight"])
def test_keys_giving_empty_layer_names(tmp_path, key):
    np.savez(tmp_path / "m.npz", **{key: np.eye(2), "other": np.eye(2)})
    with pytest.raises(
        InputError, match=rf"array key '{re.escape(key)}' gives an empty layer name; rename it"
    ):
        load_weights(tmp_path / "m.npz")
