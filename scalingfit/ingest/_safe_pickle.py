"""Load an object ``.npy`` file (a pickle inside) without letting it run code.

``np.save`` of a dict writes a ``.npy`` header for a 0-d object array, then a pickle of
it. ``np.load(allow_pickle=True)`` would run whatever that pickle names — a pickle can
call any importable function. This loader reads the header itself and unpickles with an
allow-list: the few numpy functions that rebuild arrays, dtypes and numpy scalars (and
the latin-1 ``_codecs.encode`` that pickle protocol 2 uses for bytes).
Dicts, lists, tuples, strings, bytes and numbers need no lookup at all, so they come
through; any other name (``os.system``, ``builtins.eval``, ``subprocess.Popen``) is
refused before it is even imported, with the name in the error.
"""

from __future__ import annotations

import importlib
import pickle

import numpy as np
from numpy.lib import format as npy_format

from ..errors import DataError, first_line

__all__ = ["load_object_npy", "ArraysOnlyUnpickler", "Refused"]


def _numpy_core(submodule: str):
    """numpy's core module (``numpy._core`` in numpy 2, ``numpy.core`` before)."""
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # pragma: no cover - numpy < 1.26
        return importlib.import_module(f"numpy.core.{submodule}")


_multiarray = _numpy_core("multiarray")
_numeric = _numpy_core("numeric")


def _reconstruct(subtype, shape, dtype):
    """numpy's array constructor for unpickling, limited to what numpy itself writes.

    numpy pickles an array as ``_reconstruct(ndarray, (0,), b'b')`` followed by its state,
    so a larger shape can only be an attempt to allocate memory the file does not hold.
    """
    if subtype is not np.ndarray or int(np.prod(shape)) > 1:
        raise pickle.UnpicklingError("an array reconstruction numpy does not write")
    return _multiarray._reconstruct(subtype, shape, dtype)


def _latin1_bytes(text, encoding="latin1"):
    """Bytes as pickle protocol 2 writes them: ``_codecs.encode(text, 'latin1')``, only."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode beyond what pickle writes for bytes")
    return text.encode("latin1")


def _allowed():
    names = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("_codecs", "encode"): _latin1_bytes}
    for core in ("numpy.core", "numpy._core"):  # files written by numpy 1 and numpy 2
        names[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        names[(f"{core}.multiarray", "scalar")] = _multiarray.scalar
        names[(f"{core}.numeric", "_frombuffer")] = _numeric._frombuffer
    return names


_ALLOWED = _allowed()


class ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, dicts, lists, strings and numbers only: any
    other class a pickle names is refused (:class:`Refused`), nothing of it runs."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise Refused(f"{module}.{name}") from None


class Refused(pickle.UnpicklingError):
    """The pickle names something outside the allow-list."""


def load_object_npy(path):
    """The object a ``.npy`` file holds (``np.save(path, obj)``), loaded safely.

    Returns
    -------
    object
        The 0-d object array's item (a dict, for the paper's files), or the array itself
        for a plain numeric ``.npy``.

    Raises
    ------
    DataError
        If the file is not a ``.npy`` file, or its pickle names anything but numpy's array
        rebuilding functions (the message names what was refused; nothing was run).
    """
    with open(path, "rb") as file:
        try:
            version = npy_format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(file)
            else:
                raise ValueError(f".npy format version {version} is not supported")
        except Exception as err:  # numpy's header parser raises ValueError, TokenError, ...
            raise DataError(f"not a readable .npy file ({first_line(err)}).",
                            source=path) from None
        if not dtype.hasobject:
            count = int(np.prod(shape))
            data = np.frombuffer(file.read(count * dtype.itemsize), dtype)
            if data.size != count:
                raise DataError(f"the file ends early: {data.size} of {count} values.",
                                source=path)
            return data.reshape(shape, order="F" if fortran else "C")
        try:
            array = ArraysOnlyUnpickler(file).load()
        except Refused as err:
            raise DataError(f"refused to load: its pickle calls '{err}', which is not a numpy "
                            f"array, number, string, list or dict; nothing in it was run.",
                            source=path,
                            fix="if you trust this file, re-save its data with np.save from "
                                "plain arrays, numbers, strings, lists and dicts.") from None
        except Exception as err:  # a damaged pickle raises anything from EOFError to TypeError
            raise DataError(f"not a readable pickled .npy file ({type(err).__name__}: "
                            f"{first_line(err)}).", source=path) from None
    if isinstance(array, np.ndarray) and array.dtype == object and array.shape == ():
        return array.item()
    return array
