"""Open Inference Protocol input tensors (v2.py) to one column of values per feature.

One tensor per feature (``[rows]`` or ``[rows, 1]``, of a datatype its type takes) or one
``[rows, features]`` FP64 tensor in schema order (numeric models only); data as JSON (flat or
nested, row-major) or as Triton's binary tensor data (``parameters.binary_data_size`` bytes
after the JSON part: little-endian numbers, one byte per BOOL, BYTES as a 4-byte length and the
UTF-8 text). The values are then validated as /predict's are.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from inference.errors import InvalidInput
from inference.schema import FieldRule

DATATYPE = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "categorical": "BYTES"}
# What each feature type takes (an integer feature also takes FP64, as /predict takes 6.0).
ACCEPTED = {
    "number": {"FP64", "FP32", "INT64", "INT32"},
    "integer": {"INT64", "INT32", "FP64", "FP32"},
    "boolean": {"BOOL"},
    "categorical": {"BYTES"},
}
_NUMPY = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4", "BOOL": "?"}
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})


def feature_columns(
    inputs: list[Any], binary: bytes, rules: tuple[FieldRule, ...]
) -> list[list[Any]]:
    """One list of values per feature, in schema order."""
    tensors, offset = [], 0
    for index, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise InvalidInput(f"inputs[{index}] must be a tensor with name, shape and datatype")
        if not set(tensor) <= _TENSOR_KEYS:
            raise InvalidInput(f"inputs[{index}] has a key a tensor does not have")
        shape = tensor["shape"]
        if not (isinstance(shape, list) and shape and all(_count(n) for n in shape)):
            raise InvalidInput(f"inputs[{index}].shape must be an array of sizes")
        values, offset = _values(tensor, binary, offset, math.prod(shape), f"inputs[{index}]")
        tensors.append((tensor["name"], tensor["datatype"], shape, values))
    if offset != len(binary):
        raise InvalidInput("the binary tensor data is longer than the inputs' binary_data_size")
    by_name = {rule.name: rule for rule in rules}
    if len(tensors) == 1 and len(tensors[0][2]) == 2 and tensors[0][2][1] == len(rules) > 1:
        return _matrix(tensors[0][1], tensors[0][3], rules)
    seen = [name for name, *_ in tensors]
    missing = [rule.name for rule in rules if rule.name not in seen]
    unknown = [str(name) for name in seen if name not in by_name]
    if unknown or missing or len(set(seen)) != len(seen):
        raise InvalidInput(
            "send one input tensor per feature ("
            + ", ".join(rule.name for rule in rules)
            + f") or one [rows, {len(rules)}] FP64 tensor in that order"
            + (f"; unknown input {unknown[0][:64]!r}" if unknown else "")
            + (f"; missing {missing[0]!r}" if missing else ""),
            code="unknown_field" if unknown else "missing_field",
        )
    columns = {}
    lengths = set()
    for name, datatype, shape, values in tensors:
        rule = by_name[name]
        if datatype not in ACCEPTED[rule.type]:
            raise InvalidInput(
                f"input {name!r} is {rule.type}: send it as {DATATYPE[rule.type]}, not "
                f"{str(datatype)[:16]}",
                code="invalid_value",
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(f"input {name!r} must have shape [rows] or [rows, 1]")
        columns[name] = _nulls(values, rule)
        lengths.add(shape[0])
    if len(lengths) != 1:
        raise InvalidInput("the input tensors differ in their number of rows")
    return [columns[rule.name] for rule in rules]


def _matrix(datatype: Any, values: list[Any], rules: tuple[FieldRule, ...]) -> list[list[Any]]:
    if datatype != "FP64" or not all(rule.numeric for rule in rules):
        raise InvalidInput(
            f"a [rows, {len(rules)}] tensor is FP64 and only for models whose features are all "
            "numbers; send one tensor per feature",
            code="invalid_value",
        )
    width = len(rules)
    return [_nulls(values[i::width], rule) for i, rule in enumerate(rules)]


def _nulls(values: list[Any], rule: FieldRule) -> list[Any]:
    """NaN (binary FP64 data's missing value) is null for a nullable number."""
    if rule.nullable and rule.numeric:
        return [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    return values


def _count(value: Any) -> bool:
    return type(value) is int and value >= 1


def _values(
    tensor: dict[str, Any], binary: bytes, offset: int, count: int, where: str
) -> tuple[list[Any], int]:
    datatype = tensor["datatype"]
    parameters = tensor.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}.parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if "data" in tensor or type(size) is not int or offset + size > len(binary):
            raise InvalidInput(f"{where}.parameters.binary_data_size does not fit the body")
        values = _decode(binary[offset : offset + size], datatype, where)
        offset += size
    else:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise InvalidInput(f"{where}.data must be an array")
        values = _flatten(data)
    if len(values) != count:
        raise InvalidInput(f"{where} has {len(values)} values; its shape says {count}")
    return values, offset


def _flatten(data: list[Any]) -> list[Any]:
    while data and all(isinstance(item, list) for item in data):
        data = [value for item in data for value in item]
    return data


def _decode(raw: bytes, datatype: Any, where: str) -> list[Any]:
    if datatype == "BYTES":
        values: list[Any] = []
        position = 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise InvalidInput(f"{where}: truncated BYTES element")
            (length,) = struct.unpack_from("<I", raw, position)
            chunk = raw[position + 4 : position + 4 + length]
            if len(chunk) != length:
                raise InvalidInput(f"{where}: truncated BYTES element")
            try:
                values.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidInput(f"{where}: a BYTES element is not UTF-8 text") from None
            position += 4 + length
        return values
    dtype = _NUMPY.get(datatype)
    if dtype is None:
        raise InvalidInput(f"{where}: datatype {str(datatype)[:16]!r} is not supported")
    if len(raw) % np.dtype(dtype).itemsize:
        raise InvalidInput(f"{where}: binary data is not a whole number of {datatype} values")
    decoded: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return decoded
