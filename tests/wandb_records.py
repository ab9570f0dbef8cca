"""Reading a W&B offline run's ``.wandb`` file back, for the logger tests (W&B ships no Python reader).

The file is a record log: a 7-byte header, then 32 KiB blocks of chunks, each with a 7-byte
header (checksum, length, kind: 1 whole record, 2 first part, 3 middle, 4 last); the records
are W&B's protobuf ``Record`` messages.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7


def history_rows(path: Path) -> list[dict[str, Any]]:
    """Every ``run.log`` row of the run in `path`, as ``{key: value}``."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for raw in _records(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def _records(data: bytes) -> list[bytes]:
    assert data[:4] == b":W&B", "not a W&B run file"
    records, parts, pos = [], [], HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        if kind == 0 and length == 0:
            break
        parts.append(data[pos:pos + length])
        pos += length
        if kind in (1, 4):
            records.append(b"".join(parts))
            parts = []
    return records
