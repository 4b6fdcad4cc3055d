"""The one ``.npz`` writer (:mod:`mixbridge.npz`): plain numpy files, the same bytes for the same arrays."""
from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from mixbridge.npz import ZIP_EPOCH, NpzDtypeError, npz_bytes


def test_bytes_depend_only_on_the_arrays_and_numpy_reads_them(tmp_path: Path) -> None:
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(["x", "yz"])}
    data = npz_bytes(arrays)
    assert data == npz_bytes(dict(reversed(list(arrays.items()))))
    with zipfile.ZipFile(BytesIO(data)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["a.npy", "b.npy"]
    assert all(i.date_time == ZIP_EPOCH and i.compress_type == zipfile.ZIP_STORED for i in infos)
    (tmp_path / "x.npz").write_bytes(data)
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["b"], arrays["b"])
        assert z["a"].tolist() == ["x", "yz"]


def test_object_arrays_are_refused() -> None:
    with pytest.raises(NpzDtypeError, match="array 'o' has dtype object"):
        npz_bytes({"o": np.array([{"a": 1}], dtype=object)})
