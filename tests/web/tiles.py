"""Tiny real tile archives for the MAP_TILES tests: an MBTiles (SQLite, TMS rows) and a PMTiles v3 file
(https://github.com/protomaps/PMTiles/blob/main/spec/v3/spec.md), both with raster PNG tiles."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from pathlib import Path


def png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    row = b"\x00" + bytes(rgb) * size
    raw = row * size

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def write_mbtiles(path: Path, tiles: dict[tuple[int, int, int], bytes]) -> Path:
    """tiles: {(z, x, y_xyz): png}; stored with TMS rows as the MBTiles spec says."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        conn.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        conn.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [("name", "test"), ("format", "png"), ("minzoom", "0"), ("maxzoom", "1")],
        )
        conn.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)", [(z, x, (2**z - 1) - y, data) for (z, x, y), data in tiles.items()]
        )
    return path


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_pmtiles(path: Path, tile: bytes) -> Path:
    """One z0 tile (tile id 0), no internal compression: enough for a client to read header, directory and
    tile with three range requests."""
    directory = _varint(1) + _varint(0) + _varint(1) + _varint(len(tile)) + _varint(0 + 1)
    metadata = b"{}"
    header_len = 127
    root_offset = header_len
    metadata_offset = root_offset + len(directory)
    data_offset = metadata_offset + len(metadata)
    header = (
        b"PMTiles"
        + bytes([3])
        + struct.pack(
            "<QQQQQQQQQQQ",
            root_offset,
            len(directory),
            metadata_offset,
            len(metadata),
            data_offset,
            0,
            data_offset,
            len(tile),
            1,
            1,
            1,
        )
    )
    header += bytes([1, 1, 1, 2, 0, 0])  # clustered, internal compression none, tile compression none, png, z0-z0
    header += struct.pack("<iiii", -1800000000, -850000000, 1800000000, 850000000)
    header += bytes([0]) + struct.pack("<ii", 0, 0)
    assert len(header) == header_len, len(header)
    path.write_bytes(header + directory + metadata + tile)
    return path
