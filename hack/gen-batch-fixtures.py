#!/usr/bin/env python3
"""Generate (and optionally cross-check) the RecordBatch v2 golden fixtures in
transport/tests/fixtures/ with kafka-python, an implementation independent of Quiver's.

This script owns the fixture files `transport/tests/fixtures/batch_*.bin`; each is one batch exactly
as kafka-python's DefaultRecordBatchBuilder (magic 2) writes it. The record sets below are
mirrored, by construction rule, in transport/tests/batch_golden.rs: change one, change both.

Usage:
    pip install kafka-python crc32c python-snappy lz4 zstandard cramjam
    python3 hack/gen-batch-fixtures.py            # (re)write the fixtures
    python3 hack/gen-batch-fixtures.py --verify DIR
        # decode every DIR/<name>.bin batch Quiver wrote (see QUIVER_BATCH_EXPORT_DIR in
        # batch_golden.rs) with kafka-python and compare it with the record set <name> names.
"""

import argparse
import os
import sys

import zstandard
from kafka import codec
from kafka.record import default_records
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "transport", "tests", "fixtures")
BATCH_SIZE_MAX = 1 << 30  # large enough that kafka-python never refuses an append

CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2, 3, 4


# ---- record sets (mirrored in transport/tests/batch_golden.rs) -------------------------------------
# A record is (offset_delta, timestamp, key, value, [(header_key, header_value)]).

def basic_records():
    """Three records: header with a value and a null header value, a null key, a tombstone, and a
    max timestamp that is not the last record's."""
    return [
        (0, 1_700_000_000_000, b"k0", b"hello", [("h1", b"v1"), ("h2", None)]),
        (1, 1_700_000_000_005, None, b"no key", []),
        (2, 1_699_999_999_997, b"k2", None, [("", b"")]),
    ]


def gap_records():
    """Compaction-style offset gaps (deltas 0, 3, 7)."""
    return [
        (0, 1_000, b"a", b"1", []),
        (3, 2_000, b"b", b"2", []),
        (7, 1_500, b"c", b"3", [("x", b"y")]),
    ]


def large_records(n=400):
    """Many records with multi-byte varints (lengths to 299, large and negative timestamp
    deltas), null keys/values and mixed headers; ~60 KiB, so xerial and LZ4 use several blocks."""
    out = []
    for i in range(n):
        ts = 1_700_000_000_000 + i * 1_000_003 - (i % 7) * 50_000_000
        key = None if i % 10 == 3 else ("key-%05d" % i).encode()
        if i % 17 == 5:
            value = None
        else:
            value = bytes(((i * 31 + j) % 26 + 97) for j in range((i * 37) % 300))
        headers = []
        if i % 3 != 0:
            headers.append(("h%d" % (i % 4), None if i % 5 == 0 else ("hv%d" % i).encode()))
        if i % 4 == 1:
            headers.append(("trace", b"abc" * (i % 4)))
        out.append((i, ts, key, value, headers))
    return out


# name -> (record set, codec, producer_id, producer_epoch, base_sequence, transactional, patch)
# `patch` swaps kafka-python's encoder for a variant Kafka producers also emit.
def raw_snappy(payload):
    return codec.snappy_encode(payload, xerial_compatible=False)


def zstd_no_content_size(payload):
    return zstandard.ZstdCompressor(write_content_size=False).compress(payload)


FIXTURE_SPECS = {
    "basic": (basic_records, CODEC_NONE, -1, -1, -1, False, None),
    "producer": (basic_records, CODEC_NONE, 4242, 7, 100, True, None),
    "gaps": (gap_records, CODEC_NONE, -1, -1, -1, False, None),
    "large": (large_records, CODEC_NONE, 9, 0, 0, False, None),
    "large_gzip": (large_records, CODEC_GZIP, -1, -1, -1, False, None),
    "large_snappy": (large_records, CODEC_SNAPPY, -1, -1, -1, False, None),
    "large_snappy_raw": (large_records, CODEC_SNAPPY, -1, -1, -1, False,
                         ("snappy_encode", raw_snappy)),
    "large_lz4": (large_records, CODEC_LZ4, -1, -1, -1, False, None),
    "large_zstd": (large_records, CODEC_ZSTD, -1, -1, -1, False, None),
    "large_zstd_nosize": (large_records, CODEC_ZSTD, -1, -1, -1, False,
                          ("zstd_encode", zstd_no_content_size)),
}


def build(spec):
    records_fn, codec_id, pid, epoch, seq, txn, patch = spec
    saved = None
    if patch is not None:
        saved = getattr(default_records, patch[0])
        setattr(default_records, patch[0], patch[1])
    try:
        b = DefaultRecordBatchBuilder(
            magic=2, compression_type=codec_id, is_transactional=txn,
            producer_id=pid, producer_epoch=epoch, base_sequence=seq,
            batch_size=BATCH_SIZE_MAX)
        for delta, ts, key, value, headers in records_fn():
            assert b.append(delta, timestamp=ts, key=key, value=value, headers=headers) is not None
        out = bytes(b.build())
    finally:
        if saved is not None:
            setattr(default_records, patch[0], saved)
    # kafka-python silently falls back to no compression when it does not shrink the data; a
    # compressed fixture must really be compressed.
    attributes = int.from_bytes(out[21:23], "big")
    assert attributes & 0x07 == codec_id, (attributes, codec_id)
    return out


def check_decodes(name, data, records_fn):
    """Decode `data` with kafka-python and compare it with the record set."""
    batch = DefaultRecordBatch(data)
    assert batch.validate_crc(), "%s: bad crc" % name
    got = [(r.offset, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers])
           for r in batch]
    want = [(d, ts, k, v, h) for d, ts, k, v, h in records_fn()]
    # kafka-python decodes header values as bytes or None and keys as str; so do we.
    assert got == want, "%s: records differ" % name


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verify", metavar="DIR",
                        help="decode Quiver-built DIR/<name>.bin batches with kafka-python")
    args = parser.parse_args()
    if args.verify:
        names = sorted(f[:-4] for f in os.listdir(args.verify) if f.endswith(".bin"))
        if not names:
            sys.exit("no .bin files in %s" % args.verify)
        for name in names:
            spec_name = name.split("__")[0]  # e.g. "large__zstd": record set "large"
            with open(os.path.join(args.verify, name + ".bin"), "rb") as f:
                check_decodes(name, f.read(), FIXTURE_SPECS[spec_name][0])
            print("ok  %s" % name)
        return
    os.makedirs(FIXTURES, exist_ok=True)
    for name, spec in FIXTURE_SPECS.items():
        data = build(spec)
        check_decodes(name, data, spec[0])
        path = os.path.join(FIXTURES, "batch_%s.bin" % name)
        with open(path, "wb") as f:
            f.write(data)
        print("wrote %-40s %6d bytes" % (os.path.relpath(path), len(data)))


if __name__ == "__main__":
    main()
