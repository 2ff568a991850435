"""Categorical tokens -> 64-bit keys: the first half of the one id -> row mapping.

Every raw categorical value (a Criteo hex id, an Avazu site id, a Parquet integer) is read as a
string token and hashed with 64-bit FNV-1a over its UTF-8 bytes, vectorized over a whole Arrow
string array. Key 0 is reserved for "missing" (a null or empty token); a token hashing to 0 is
moved to 1. The vocabulary (`vocabulary.py`) then maps keys to embedding rows. Two distinct
tokens share a key with probability ~V^2 / 2^65 (about 3e-6 for V = 10M): negligible.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING_KEY = np.uint64(0)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

HEX_BYTES = np.zeros(256, dtype=bool)
HEX_BYTES[np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)] = True


def _as_string_array(array: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """One contiguous `string` array (int32 offsets) holding the tokens of `array`."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


def token_keys(array: pa.Array | pa.ChunkedArray,
               allowed_bytes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hash every token of `array` to a uint64 key.

    The array is dictionary-encoded first, so each distinct token of the chunk is hashed once.

    Args:
        array: tokens (any Arrow type; non-strings are cast to their string form).
        allowed_bytes: optional 256-entry bool table; a token with another byte is invalid.

    Returns:
        `(keys, invalid)`: keys `[n]` uint64 (0 = null or empty token) and a bool mask of
        tokens holding a byte outside `allowed_bytes` (all False when not given).
    """
    encoded = pc.dictionary_encode(_as_string_array(array))
    indices = encoded.indices
    valid = indices.is_valid().to_numpy(zero_copy_only=False)
    positions = indices.fill_null(0).to_numpy().astype(np.intp)
    keys, invalid = _distinct_token_keys(encoded.dictionary, allowed_bytes)
    if not len(keys):
        return np.zeros(len(positions), dtype=np.uint64), np.zeros(len(positions), dtype=bool)
    return np.where(valid, keys[positions], MISSING_KEY), invalid[positions] & valid


def _distinct_token_keys(strings: pa.StringArray,
                         allowed_bytes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """FNV-1a keys and invalid-byte flags of the (distinct, non-null) tokens of a chunk."""
    n = len(strings)
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=n + 1,
                            offset=strings.offset * 4).astype(np.int64)
    data = (np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None
            else np.zeros(0, dtype=np.uint8))
    lengths = np.diff(offsets)
    if strings.null_count:
        lengths = np.where(strings.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    keys = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    invalid = np.zeros(n, dtype=bool)
    # Positions advance over all still-active tokens at once; the active set is compacted only
    # when it has halved, so equal-length tokens (hex ids) cost one gather per byte position.
    active = np.flatnonzero(lengths > 0)
    starts, active_lengths = offsets[:-1][active], lengths[active]
    active_keys = keys[active]
    active_invalid = np.zeros(active.size, dtype=bool)
    position = 0
    while active.size:
        live = active_lengths > position
        byte = data[np.where(live, starts + position, 0)]
        if allowed_bytes is not None:
            active_invalid |= live & ~allowed_bytes[byte]
        hashed = (active_keys ^ byte.astype(np.uint64)) * _FNV_PRIME
        active_keys = np.where(live, hashed, active_keys)
        position += 1
        live = active_lengths > position
        if live.sum() * 2 <= live.size:
            keys[active], invalid[active] = active_keys, active_invalid
            active, starts, active_lengths = active[live], starts[live], active_lengths[live]
            active_keys, active_invalid = active_keys[live], active_invalid[live]
    keys[keys == MISSING_KEY] = np.uint64(1)
    keys[lengths == 0] = MISSING_KEY
    return keys, invalid


def hex_token_keys(values: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """`token_keys` of the 8-digit lowercase hex form of 32-bit `values`, without strings.

    Equal to `token_keys(pa.array([f"{v:08x}" for v in values]))[0]` (0 where `missing`).
    """
    values = np.asarray(values, dtype=np.uint64)
    keys = np.full(values.shape, _FNV_OFFSET, dtype=np.uint64)
    for shift in range(28, -4, -4):
        nibble = (values >> np.uint64(shift)) & np.uint64(15)
        digit = np.where(nibble < 10, nibble + np.uint64(48), nibble + np.uint64(87))
        keys = (keys ^ digit) * _FNV_PRIME
    keys[keys == MISSING_KEY] = np.uint64(1)
    if missing is not None:
        keys[missing] = MISSING_KEY
    return keys
