"""Scalars out of TensorBoard ``Event`` records, without TensorFlow.

Almost every record of a training log holds scalars only: ``Event{wall_time, step,
summary{value{tag, simple_value | tensor, [metadata]}, value{...}, ...}}`` — one value
per event (``add_scalar``) or several (a loop that puts a step's metrics in one
``Summary``). Those are decoded for a whole batch of records at once with numpy
(:func:`_decode_scalars`: the n-th value of every record in one pass), which is what makes
reading fast; a record in any other layout (hparams, images, an unknown field) goes
through the protobuf classes that ship with the ``tensorboard`` package, which decode
everything. Both paths give the same answer (tests decode the same records both ways).

Two encodings of a scalar are understood, as TensorBoard itself reads them:
``simple_value`` (PyTorch's SummaryWriter, tensorboardX, TF1) and a one-element tensor
under the ``scalars`` plugin (TF2's ``tf.summary.scalar``: ``tensor_content``, or
``float_val`` / ``double_val``). The plugin named in a tag's first metadata holds for the
whole run, because TF1 writers keep metadata on the first event of a tag only.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

__all__ = ["EventScalars"]

#: TensorFlow DataType enum -> numpy dtype, for one-element tensors.
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
           17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}
_DT_BFLOAT16 = 14
_SCALARS = "scalars"
#: Tags up to this many bytes are compared as rows of a matrix, longer ones one by one.
_LONGEST_ROW = 256
_HPARAMS = "hparams"


class EventScalars:
    """The scalars, tag plugins and hyperparameters found in one run's event records."""

    def __init__(self, protos, *, vectorised: bool = True):
        self._protos = protos  # tensorboard's protobuf modules, imported by the caller
        self._vectorised = vectorised  # False: every record through protobuf (for checks)
        self.tags: dict[str, int] = {}
        self.plugins: dict[str, str] = {}  # tag -> plugin of its first metadata
        self.hparams: dict = {}
        self.ignored = Counter()  # non-scalar summaries, by kind
        self.undecodable = 0
        self.decoded_one_by_one = 0  # records that went through protobuf
        self._names: list[str] = []  # tag id -> tag
        self._not_one_number = Counter()  # tag -> tensors that are not a single number
        self._parts = []  # (sequence, tag id, step, value, is tensor) arrays per batch
        self._seen = 0  # records fed so far: the logging order across batches

    def feed(self, buffer: bytes, starts, ends):
        """Decode one batch of records (data offsets into ``buffer``)."""
        buf = np.frombuffer(buffer, np.uint8)
        starts = np.asarray(starts, np.int64)
        ends = np.asarray(ends, np.int64)
        order = self._seen + np.arange(len(starts))
        self._seen += len(starts)

        if self._vectorised:
            ok, values = _decode_scalars(buf, starts, ends)
        else:
            ok, values = np.zeros(len(starts), bool), None
        if values is not None and len(values["record"]):
            self._keep_fast(buffer, buf, order, values)
        one_by_one = np.flatnonzero(~ok)
        self.decoded_one_by_one += len(one_by_one)
        for i in one_by_one:
            self._decode_with_protobuf(buffer[starts[i]:ends[i]], order[i])

    def series(self):
        """Tag -> (steps, values) of scalars, in logging order; tensors only under 'scalars'.

        Returns
        -------
        (dict, Counter)
            The series, and counts of values skipped because a tag's plugin says they are
            not scalars or a tensor was not one number.
        """
        out, not_scalars = {}, Counter()
        for tag, count in self._not_one_number.items():
            if self.plugins.get(tag) == _SCALARS:
                not_scalars["tensors under the 'scalars' plugin that are not one number"] += count
            else:
                self.ignored[f"'{self.plugins.get(tag) or 'unnamed'}' tensor summaries"] += count
        if not self._parts:
            return out, not_scalars
        seq, tag, step, value, tensor = (np.concatenate(a) for a in zip(*self._parts, strict=True))
        # logging order: records by sequence; a record's values (decoded pass by pass, or
        # one by one) in the order written, which the stable sort keeps
        order = np.argsort(seq, kind="stable")
        tag, step, value, tensor = tag[order], step[order], value[order], tensor[order]
        ids, first = np.unique(tag, return_index=True)
        for i in ids[np.argsort(first)]:  # tags in the order they were first logged
            name = self._names[int(i)]
            mine = tag == i
            plugin = self.plugins.get(name, "")
            if plugin not in ("", _SCALARS):  # another plugin's data under a scalar layout
                self.ignored[f"'{plugin}' summaries"] += int(mine.sum())
                continue
            if plugin == "":  # tensors with no plugin: TensorBoard does not show them
                unnamed = mine & tensor
                if unnamed.any():
                    self.ignored["tensor summaries without the 'scalars' plugin"] += int(
                        unnamed.sum())
                    mine &= ~tensor
            if mine.any():
                out[name] = (step[mine], value[mine])
        return out, not_scalars

    # -- the fast path ------------------------------------------------------------------

    def _keep_fast(self, buffer, buf, order, values):
        codes, tags = _factorize_bytes(buffer, buf, values["tag_start"], values["tag_len"])
        local_to_global = np.array([self._tag_id(tag.decode("utf-8", "replace"))
                                    for tag in tags], np.int64)
        tag_ids = local_to_global[codes]
        # the first metadata of each tag names its plugin
        meta_start, meta_len = values["meta_start"], values["meta_len"]
        has_meta = meta_len > 0
        if has_meta.any():
            for local in np.unique(codes[has_meta]):
                tag = self._names[int(local_to_global[local])]
                if tag in self.plugins:
                    continue
                # the earliest record's (values come pass by pass, not record by record)
                candidates = np.flatnonzero(has_meta & (codes == local))
                first = candidates[np.argmin(values["record"][candidates])]
                blob = buffer[meta_start[first]:meta_start[first] + meta_len[first]]
                self._note_metadata(tag, self._protos.summary.SummaryMetadata.FromString(blob))
        self._parts.append((order[values["record"]], tag_ids, values["step"],
                            values["value"], values["tensor"]))

    # -- the general path ---------------------------------------------------------------

    def _decode_with_protobuf(self, record: bytes, order: int):
        from google.protobuf.message import DecodeError

        try:
            event = self._protos.event.Event.FromString(record)
        except DecodeError:
            self.undecodable += 1
            return
        if event.WhichOneof("what") != "summary":
            return  # file version, graph, session log, ...: not data
        seqs, tags, values, tensors = [], [], [], []
        for value in event.summary.value:
            if value.HasField("metadata") and value.tag not in self.plugins:
                self._note_metadata(value.tag, value.metadata)
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                number, is_tensor = value.simple_value, False
            elif kind == "tensor":
                if self.plugins.get(value.tag) == _HPARAMS:
                    continue  # read from the metadata above
                number, is_tensor = _tensor_scalar(value.tensor), True
                if number is None:
                    self._not_one_number[value.tag] += 1
                    continue
            else:
                self.ignored[f"{kind or 'empty'} summaries"] += 1
                continue
            seqs.append(order)
            tags.append(self._tag_id(value.tag))
            values.append(number)
            tensors.append(is_tensor)
        if tags:
            self._parts.append((np.array(seqs, np.int64), np.array(tags, np.int64),
                                np.full(len(tags), event.step, np.int64),
                                np.array(values, np.float64), np.array(tensors, bool)))

    def _note_metadata(self, tag, metadata):
        plugin = metadata.plugin_data.plugin_name
        self.plugins[tag] = plugin
        if plugin == _HPARAMS:
            data = self._protos.hparams.HParamsPluginData.FromString(metadata.plugin_data.content)
            if data.WhichOneof("data") == "session_start_info":
                for name, value in data.session_start_info.hparams.items():
                    kind = value.WhichOneof("kind")
                    if kind in ("number_value", "string_value", "bool_value"):
                        self.hparams[name] = getattr(value, kind)

    def _tag_id(self, tag: str) -> int:
        if tag not in self.tags:
            self.tags[tag] = len(self._names)
            self._names.append(tag)
        return self.tags[tag]


def _tensor_scalar(tensor) -> float | None:
    """The one number a TensorProto holds, or None if it holds something else."""
    dims = [d.size for d in tensor.tensor_shape.dim]
    if int(np.prod(dims)) != 1:
        return None
    if tensor.dtype == _DT_BFLOAT16:  # the upper half of a float32
        raw = (np.frombuffer(tensor.tensor_content, "<u2") if tensor.tensor_content
               else np.array(tensor.half_val, np.uint32).astype("<u2"))
        values = (raw.astype(np.uint32) << 16).view(np.float32)
    elif tensor.dtype not in _DTYPES:
        return None
    elif tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, _DTYPES[tensor.dtype])
    elif tensor.dtype == 19:  # half_val holds float16 bit patterns
        values = np.array(tensor.half_val, np.uint32).astype("<u2").view("<f2")
    else:
        field = {1: "float_val", 2: "double_val", 9: "int64_val", 23: "uint64_val",
                 22: "uint32_val", 10: "bool_val"}.get(tensor.dtype, "int_val")
        values = np.asarray(getattr(tensor, field))
    if values.size != 1:
        return None
    return float(values.reshape(-1)[0])


def _factorize_bytes(buffer, buf, start, length):
    """Codes of the byte strings ``buffer[start:start + length]``, and the distinct strings.

    The strings become zero-padded rows of 64-bit words, hashed into one word each, which
    pandas factorises without a Python loop over records. Every string is then compared
    with the first one of its code, so a collision of the hash cannot join two tags (it
    sends the batch to an exact, slower factorisation instead). A batch with a tag longer
    than ``_LONGEST_ROW`` bytes, whose rows would take much memory, is hashed string by
    string.
    """
    if len(start) == 0:
        return np.empty(0, np.int64), []
    if length.max() > _LONGEST_ROW:  # rows would be wide: hash the strings one by one
        strings = np.empty(len(start), object)
        strings[:] = [buffer[s:s + n] for s, n in zip(start.tolist(), length.tolist(),
                                                       strict=True)]
        codes, uniques = pd.factorize(strings)
        return codes, list(uniques)
    words = _byte_rows(buf, start, length).view("<u8")
    codes, _ = pd.factorize(_hash_rows(words, length))
    first = np.unique(codes, return_index=True)[1]
    same = (length == length[first][codes]) & (words == words[first][codes]).all(axis=1)
    if not same.all():  # a collision: compare the strings themselves
        rows = np.column_stack([length.astype("<u8").view(np.uint8).reshape(-1, 8),
                                words.view(np.uint8)])
        keys = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
        first, codes = np.unique(keys, return_index=True, return_inverse=True)[1:]
        codes = codes.ravel()
    return codes, [buffer[start[i]:start[i] + length[i]] for i in first]


def _hash_rows(words, length):
    """One 64-bit hash per row of words (and its length): multiply, xor, shift."""
    key = length.astype(np.uint64)
    with np.errstate(over="ignore"):
        for column in words.T:
            key = (key ^ column) * np.uint64(0x9E3779B97F4A7C15)
            key ^= key >> np.uint64(29)
    return key


def _byte_rows(buf, start, length):
    """``buf[start:start + length]`` as the rows of a matrix, zero-padded to 8-byte words."""
    width = -(-int(length.max()) // 8) * 8 or 8
    padded = np.concatenate([buf, np.zeros(width, np.uint8)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)[start]
    rows[np.arange(width) >= length[:, None]] = 0
    return rows


def _varint(buf, pos):
    """Varints at ``pos``: (values as uint64, positions after them, whether each is whole).

    Byte by byte, but for all varints at once, and only as long as some still continue:
    lengths and tags take one byte, steps two or three.
    """
    size = len(buf)
    byte = buf.take(pos, mode="clip")
    value = (byte & 0x7F).astype(np.uint64)
    after, whole = pos + 1, (pos >= 0) & (pos < size)
    going = np.flatnonzero(byte >= 0x80)
    if going.size:
        after, whole = after.copy(), whole.copy()
    for shift in range(7, 70, 7):
        if going.size == 0:
            break
        byte = buf.take(after[going], mode="clip")
        value[going] |= (byte & 0x7F).astype(np.uint64) << np.uint64(shift)
        whole[going] &= after[going] < size
        after[going] += 1
        going = going[byte >= 0x80]
    whole[going] = False  # more than ten bytes: not a varint
    return value, after, whole


def _decode_scalars(buf, starts, ends):
    """Decode, for all records at once, the events whose values are all scalars.

    ``Event{[wall_time], [step], summary{value{...}, value{...}, ...}}``, each value
    ``{tag, simple_value | scalar tensor, [metadata]}``. The values of a summary are
    decoded in passes: the first value of every record, then the second of those that
    have one, and so on; a pass costs only the records it touches.

    Returns
    -------
    (numpy.ndarray, dict)
        ``ok``: whether each record has such a layout. Anything unexpected leaves it
        False, and the record then goes through protobuf, so this function only has to be
        right, not complete. And one entry per value of the ok records, pass by pass
        (the first value of every record, then the second, ...; a stable sort on
        ``record`` gives the order written): ``record`` (its index), ``step``, ``value``,
        ``tensor`` (encoded as a tensor), ``tag_start``, ``tag_len``, ``meta_start``,
        ``meta_len``.
    """
    def byte(pos):
        return buf.take(pos, mode="clip")

    ok = ends > starts
    pos = starts.copy()
    # Event.wall_time (field 1, 64-bit): optional
    pos = np.where(ok & (byte(pos) == 0x09), pos + 9, pos)
    # Event.step (field 2, varint): optional, 0 when absent
    has_step = ok & (pos < ends) & (byte(pos) == 0x10)
    number, after, whole = _varint(buf, pos + 1)
    step = np.where(has_step, number.view(np.int64), 0)
    pos = np.where(has_step, after, pos)
    ok &= ~has_step | whole
    # Event.summary (field 5), filling the rest of the record ...
    ok &= (pos < ends) & (byte(pos) == 0x2A)
    length, pos, whole = _varint(buf, pos + 1)
    ok &= whole & (pos + length.astype(np.int64) == ends)
    # ... holding Summary.value (field 1) after Summary.value, filling the summary
    active = np.flatnonzero(ok & (pos < ends))  # records with a value left to decode
    at = pos[active]
    passes = []
    while active.size:
        end = ends[active]
        good, fields, at = _decode_value(buf, at, end)
        ok[active[~good]] = False
        fields["record"] = active
        passes.append({name: column[good] for name, column in fields.items()})
        going = good & (at < end)
        active, at = active[going], at[going]
    if not passes:
        return ok, None
    values = {name: np.concatenate([p[name] for p in passes]) for name in passes[0]}
    keep = ok[values["record"]]  # a record that failed in a later pass goes to protobuf whole
    if not keep.all():
        values = {name: column[keep] for name, column in values.items()}
    values["step"] = step[values["record"]]
    return ok, values


def _decode_value(buf, pos, ends):
    """One ``Summary.value`` at each of ``pos`` (field key included), none beyond ``ends``.

    Returns (whether each is a scalar value, its fields, the positions after it).
    """
    def byte(at):
        return buf.take(at, mode="clip")

    n = len(pos)
    ok = (pos < ends) & (byte(pos) == 0x0A)
    length, pos, whole = _varint(buf, pos + 1)
    value_end = pos + length.astype(np.int64)
    ok &= whole & (value_end <= ends)
    # Value.tag (field 1)
    ok &= byte(pos) == 0x0A
    tag_len, tag_start, whole = _varint(buf, pos + 1)
    tag_len = tag_len.astype(np.int64)
    ok &= whole & (tag_start + tag_len <= value_end)
    pos = tag_start + tag_len
    # Value.simple_value (field 2, float32) ...
    value = np.full(n, np.nan)
    simple = ok & (byte(pos) == 0x15) & (pos + 5 <= value_end)
    value[simple] = _floats(buf, pos[simple] + 1, "<f4")
    # ... or Value.tensor (field 8): a scalar float32/float64 tensor
    tensor = ok & ~simple & (byte(pos) == 0x42)
    if tensor.any():
        length, inner, whole = _varint(buf, pos + 1)
        tensor_end = inner + length.astype(np.int64)
        tensor &= whole & (tensor_end <= value_end)
        numbers, scalar = _scalar_tensor(buf, inner, tensor_end, tensor)
        tensor &= scalar
        value[tensor] = numbers[tensor]
        pos = np.where(tensor, tensor_end, pos)
    pos = np.where(simple, pos + 5, pos)
    ok &= simple | tensor
    # Value.metadata (field 9): optional, last
    has_meta = ok & (pos < value_end) & (byte(pos) == 0x4A)
    meta_start = np.zeros(n, np.int64)
    meta_len = np.zeros(n, np.int64)
    if has_meta.any():
        length, after, whole = _varint(buf, pos + 1)
        meta_start = np.where(has_meta, after, 0)
        meta_len = np.where(has_meta, length.astype(np.int64), 0)
        pos = np.where(has_meta, after + meta_len, pos)
        ok &= ~has_meta | whole
    ok &= pos == value_end
    return ok, {"value": value, "tensor": tensor & ok, "tag_start": tag_start,
                "tag_len": tag_len, "meta_start": meta_start, "meta_len": meta_len}, value_end


def _scalar_tensor(buf, start, end, candidate):
    """TensorProto{dtype: float|double, [shape {}], one value}: (values, which matched).

    The value is in ``tensor_content`` (TF2's writer), or packed ``float_val`` /
    ``double_val`` (``make_tensor_proto``).
    """
    def byte(pos):
        return buf.take(pos, mode="clip")

    pos = start.copy()
    ok = candidate & (byte(pos) == 0x08)
    dtype = byte(pos + 1)
    ok &= (dtype == 1) | (dtype == 2)
    pos = pos + 2
    # TensorProto.tensor_shape (field 2): empty for a scalar
    empty_shape = ok & (byte(pos) == 0x12) & (byte(pos + 1) == 0x00)
    pos = np.where(empty_shape, pos + 2, pos)
    width = np.where(dtype == 1, 4, 8)
    field = byte(pos)
    # tensor_content (4) holds raw bytes; float_val (5) and double_val (6) are packed
    ok &= (((field == 0x22) | (field == 0x2A)) & (dtype == 1)) | (
        ((field == 0x22) | (field == 0x32)) & (dtype == 2))
    ok &= (byte(pos + 1) == width) & (pos + 2 + width == end)
    values = np.full(len(start), np.nan)
    single = ok & (dtype == 1)
    values[single] = _floats(buf, pos[single] + 2, "<f4")
    double = ok & (dtype == 2)
    values[double] = _floats(buf, pos[double] + 2, "<f8")
    return values, ok


def _floats(buf, pos, dtype):
    width = np.dtype(dtype).itemsize
    raw = buf.take(pos[:, None] + np.arange(width), mode="clip")
    return np.ascontiguousarray(raw).view(dtype).ravel().astype(np.float64)
