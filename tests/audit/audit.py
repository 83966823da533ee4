#!/usr/bin/env python3
"""Independent exactly-once auditor for Sluice (PostgreSQL -> Kafka CDC).

It shares no code with Sluice. It reads

  * ground truth from PostgreSQL (psql, one statement, one snapshot): every `ledger` row,
    every `acct` row and the replication slot's `confirmed_flush_lsn`;
  * the raw Kafka log of every partition of `<prefix>.*` and of the offsets topic, with
    control batches, over hand-written Kafka requests (Metadata v1, ListOffsets v1,
    Fetch v4 with isolation_level 0), parsed by its own record-batch (magic 2) parser;

applies Kafka's read_committed rules itself (a producer's transactional records become
visible at its commit marker and are discarded at its abort marker; records with no
marker at the end of the log are "undecided"), decodes the visible values (Confluent
wire format, writer schema fetched by id from the registry, fastavro), and checks:

  missing      a ledger row / an acct update (k, seq) of PostgreSQL with no committed event
  duplicate    a ledger id / an acct (k, seq) among committed events more than once
  order        per key k, committed acct events whose seq is not strictly increasing
  phantom      a committed event whose txn PostgreSQL does not hold (rolled back / unknown)
  atomicity    a source transaction smaller than --max-events spread over several Kafka
               transactions of one partition; for larger ones, pieces out of order
  undecided    transactional records with no marker at the end of the log
  offsets      the slot's committed end_lsn decreasing in the offsets topic; PostgreSQL's
               confirmed_flush_lsn ahead of the last committed end_lsn
  mismatch     a committed event whose row differs from PostgreSQL's (same id / (k, seq))
  key          a record key that does not match the row's primary key
  undecodable  a value, key or offsets record that cannot be decoded
  corrupt      a record batch that cannot be parsed or whose CRC-32C is wrong

Fetching (Kafka, registry, PostgreSQL) is separate from the pure checker
`audit(truth, partitions_batches, decode)`, which tests feed with synthetic logs.

Exit status: 0 no problem, 1 problems, 2 usage or connection error.
"""

import argparse
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

# ------------------------------------------------------------------------------------
# Data model


@dataclass
class Record:
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]


@dataclass
class Batch:
    """One record batch as stored. `control` is None for data, "commit" / "abort" for a
    transaction marker, "unknown" for a control batch whose type could not be read.
    `error` is set when the batch could not be parsed (its records are then unknown;
    `count` still says how many the header announced, when known)."""

    base_offset: int
    last_offset: int
    producer_id: int = -1
    producer_epoch: int = -1
    transactional: bool = False
    control: Optional[str] = None
    records: List[Record] = field(default_factory=list)
    count: int = 0
    error: Optional[str] = None


class Unavailable(Exception):
    """A service (broker, registry, PostgreSQL) cannot be used: exit status 2."""


class WireError(Exception):
    pass


# ------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), table-driven, for record batch checksums

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ------------------------------------------------------------------------------------
# Byte reader for the Kafka protocol and record batches


class Reader:
    def __init__(self, data: bytes, pos: int = 0, end: Optional[int] = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise WireError(f"need {n} bytes at {self.pos}, have {self.end - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(b)

    def _unpack(self, fmt: str, n: int):
        if self.pos + n > self.end:
            raise WireError(f"need {n} bytes at {self.pos}, have {self.end - self.pos}")
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += n
        return v

    def i8(self):
        return self._unpack(">b", 1)

    def i16(self):
        return self._unpack(">h", 2)

    def i32(self):
        return self._unpack(">i", 4)

    def u32(self):
        return self._unpack(">I", 4)

    def i64(self):
        return self._unpack(">q", 8)

    def boolean(self):
        return self.i8() != 0

    def string(self) -> Optional[str]:
        n = self.i16()
        if n < 0:
            return None
        return self.take(n).decode("utf-8", "replace")

    def bytes32(self) -> Optional[bytes]:
        n = self.i32()
        if n < 0:
            return None
        return self.take(n)

    def array(self, item):
        n = self.i32()
        if n < 0:
            return None
        if n > self.remaining():
            raise WireError(f"array of {n} items with {self.remaining()} bytes left")
        return [item() for _ in range(n)]

    def varlong(self) -> int:
        shift = 0
        raw = 0
        while True:
            if self.pos >= self.end:
                raise WireError("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            raw |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 63:
                raise WireError("varint too long")
        return (raw >> 1) ^ -(raw & 1)

    def var_bytes(self) -> Optional[bytes]:
        n = self.varlong()
        if n < 0:
            return None
        return self.take(n)


# ------------------------------------------------------------------------------------
# Record batches (magic 2)

_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _decompress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    if codec == 3:
        try:
            import lz4.frame  # type: ignore
        except ImportError:
            raise WireError("lz4-compressed batch and no lz4 module")
        return lz4.frame.decompress(data)
    if codec == 4:
        try:
            import zstandard  # type: ignore
        except ImportError:
            raise WireError("zstd-compressed batch and no zstandard module")
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise WireError(f"{_CODECS.get(codec, codec)}-compressed batch: codec not supported by the auditor")


def _parse_records(r: Reader, base_offset: int, count: int) -> List[Record]:
    out = []
    for _ in range(count):
        length = r.varlong()
        if length < 0 or length > r.remaining():
            raise WireError(f"record length {length} with {r.remaining()} bytes left")
        rr = Reader(r.data, r.pos, r.pos + length)
        r.pos += length
        rr.i8()  # attributes
        rr.varlong()  # timestamp delta
        offset_delta = rr.varlong()
        key = rr.var_bytes()
        value = rr.var_bytes()
        nh = rr.varlong()
        if nh < 0 or nh > rr.remaining():
            raise WireError(f"{nh} headers")
        for _ in range(nh):
            rr.var_bytes()
            rr.var_bytes()
        out.append(Record(base_offset + offset_delta, key, value))
    return out


def parse_batches(data: bytes, verify_crc: bool = True) -> Tuple[List[Batch], bool]:
    """Parses a partition's record set. Returns the batches and whether a trailing
    partial batch was left out (brokers may cut at the size limit). A batch whose length
    is readable but whose content is not becomes a Batch with `error` set; a broken
    length ends parsing with WireError."""
    out: List[Batch] = []
    pos = 0
    n = len(data)
    while n - pos >= 12:
        base_offset, length = struct.unpack_from(">qi", data, pos)
        if length < 0:
            raise WireError(f"negative batch length {length} at offset {base_offset}")
        total = 12 + length
        if n - pos < total:
            return out, True
        body_start = pos + 12
        body_end = pos + total
        pos = body_end
        b = Batch(base_offset=base_offset, last_offset=base_offset)
        try:
            r = Reader(data, body_start, body_end)
            r.i32()  # partition leader epoch
            magic = r.i8()
            if magic != 2:
                raise WireError(f"record batch magic {magic}, expected 2")
            crc = r.u32()
            crc_start = r.pos
            attributes = r.i16()
            last_delta = r.i32()
            b.last_offset = base_offset + last_delta
            r.i64()  # base timestamp
            r.i64()  # max timestamp
            b.producer_id = r.i64()
            b.producer_epoch = r.i16()
            r.i32()  # base sequence
            b.count = r.i32()
            b.transactional = bool(attributes & 0x10)
            is_control = bool(attributes & 0x20)
            if is_control:
                b.control = "unknown"
            if verify_crc:
                got = crc32c(data[crc_start:body_end])
                if got != crc:
                    raise WireError(f"CRC-32C mismatch (stored {crc:#010x}, computed {got:#010x})")
            if b.count < 0:
                raise WireError(f"batch claims {b.count} records")
            codec = attributes & 0x07
            if codec:
                payload = _decompress(codec, data[r.pos:body_end])
                rr = Reader(payload)
            else:
                rr = r
            if b.count > rr.remaining():
                raise WireError(f"batch claims {b.count} records in {rr.remaining()} bytes")
            records = _parse_records(rr, base_offset, b.count)
            if is_control:
                # Control record key: version int16, type int16 (0 abort, 1 commit).
                kinds = set()
                for rec in records:
                    k = rec.key or b""
                    if len(k) >= 4:
                        t = struct.unpack_from(">h", k, 2)[0]
                        kinds.add({0: "abort", 1: "commit"}.get(t, "unknown"))
                    else:
                        kinds.add("unknown")
                if len(kinds) == 1:
                    b.control = kinds.pop()
                else:
                    raise WireError(f"control batch with marker types {sorted(kinds)}")
            else:
                b.records = records
        except (WireError, struct.error, zlib.error, ValueError) as e:
            b.error = str(e)
            b.records = []
        out.append(b)
    return out, n - pos > 0


# ------------------------------------------------------------------------------------
# Minimal Kafka client (Metadata v1, ListOffsets v1, Fetch v4)

API_FETCH, API_LIST_OFFSETS, API_METADATA = 1, 2, 3


class KafkaConn:
    def __init__(self, addr: str, timeout: float = 30.0):
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise Unavailable(f"bad broker address {addr!r} (want HOST:PORT)")
        self.addr = addr
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as e:
            raise Unavailable(f"cannot reach Kafka broker {addr}: {e}")
        self.sock.settimeout(timeout)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise Unavailable(f"Kafka broker {self.addr} closed the connection")
            buf += chunk
        return bytes(buf)

    def call(self, api: int, version: int, body: bytes) -> Reader:
        self.corr += 1
        client = b"sluice-audit"
        hdr = struct.pack(">hhih", api, version, self.corr, len(client)) + client
        frame = hdr + body
        try:
            self.sock.sendall(struct.pack(">i", len(frame)) + frame)
            (length,) = struct.unpack(">i", self._recv(4))
            if length < 4 or length > 1 << 30:
                raise Unavailable(f"Kafka broker {self.addr}: response length {length}")
            resp = self._recv(length)
        except OSError as e:
            raise Unavailable(f"Kafka broker {self.addr}: {e}")
        (corr,) = struct.unpack_from(">i", resp, 0)
        if corr != self.corr:
            raise Unavailable(f"Kafka broker {self.addr}: correlation id {corr}, expected {self.corr}")
        return Reader(resp, 4)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def kafka_metadata(conn: KafkaConn):
    """All topics: ({node_id: "host:port"}, {topic: {partition: leader}}, {topic: error})."""
    r = conn.call(API_METADATA, 1, struct.pack(">i", -1))
    try:
        brokers = {}
        for _ in range(r.i32()):
            node, host, port, _rack = r.i32(), r.string(), r.i32(), r.string()
            brokers[node] = f"{host}:{port}"
        r.i32()  # controller
        topics, errors = {}, {}
        for _ in range(r.i32()):
            err, name, _internal = r.i16(), r.string(), r.boolean()
            parts = {}
            for _ in range(r.i32()):
                perr, idx, leader = r.i16(), r.i32(), r.i32()
                r.array(r.i32)
                r.array(r.i32)
                parts[idx] = leader if perr == 0 else None
            if err:
                errors[name] = err
            else:
                topics[name] = parts
    except WireError as e:
        raise Unavailable(f"bad Metadata response from {conn.addr}: {e}")
    return brokers, topics, errors


def kafka_list_offset(conn: KafkaConn, topic: str, partition: int, ts: int) -> int:
    body = struct.pack(">ii", -1, 1) + _str(topic) + struct.pack(">iiq", 1, partition, ts)
    r = conn.call(API_LIST_OFFSETS, 1, body)
    try:
        for _ in range(r.i32()):
            name = r.string()
            for _ in range(r.i32()):
                p, err, _t, off = r.i32(), r.i16(), r.i64(), r.i64()
                if name == topic and p == partition:
                    if err:
                        raise Unavailable(f"ListOffsets {topic}/{partition}: Kafka error code {err}")
                    return off
    except WireError as e:
        raise Unavailable(f"bad ListOffsets response from {conn.addr}: {e}")
    raise Unavailable(f"ListOffsets {topic}/{partition}: partition missing from the response")


def kafka_fetch(conn: KafkaConn, topic: str, partition: int, offset: int, max_bytes: int):
    """Fetch v4, isolation_level 0 (read_uncommitted: control batches and aborted data
    included). Returns (high watermark, record bytes)."""
    body = struct.pack(">iiiib", -1, 500, 1, max_bytes, 0)
    body += struct.pack(">i", 1) + _str(topic) + struct.pack(">iiqi", 1, partition, offset, max_bytes)
    r = conn.call(API_FETCH, 4, body)
    try:
        r.i32()  # throttle
        for _ in range(r.i32()):
            name = r.string()
            for _ in range(r.i32()):
                p, err, hwm, _lso = r.i32(), r.i16(), r.i64(), r.i64()
                r.array(lambda: (r.i64(), r.i64()))  # aborted transactions (unused)
                records = r.bytes32() or b""
                if name == topic and p == partition:
                    if err:
                        raise Unavailable(f"Fetch {topic}/{partition} at {offset}: Kafka error code {err}")
                    return hwm, records
    except WireError as e:
        raise Unavailable(f"bad Fetch response from {conn.addr}: {e}")
    raise Unavailable(f"Fetch {topic}/{partition}: partition missing from the response")


def fetch_partition(conn: KafkaConn, topic: str, partition: int, verify_crc: bool = True):
    """Every batch of a partition from its earliest offset up to the high watermark as
    it was when reading started. Returns (batches, problems)."""
    problems = []
    start = kafka_list_offset(conn, topic, partition, -2)
    hwm = kafka_list_offset(conn, topic, partition, -1)
    out: List[Batch] = []
    offset = start
    max_bytes = 4 << 20
    stalls = 0
    first = True
    while first or offset < hwm:
        fetch_hwm, data = kafka_fetch(conn, topic, partition, offset, max_bytes)
        if first:
            # Some brokers (tansu) answer ListOffsets "latest" with the last-written
            # batch's base offset + 1; the fetch response's high watermark is the real end.
            first = False
            hwm = max(hwm, fetch_hwm)
            if offset >= hwm:
                break
        try:
            batches, partial = parse_batches(data, verify_crc)
        except WireError as e:
            problems.append(("corrupt", f"{topic}/{partition}: unreadable record set at offset {offset}: {e}; rest of the partition not read"))
            break
        batches = [b for b in batches if b.last_offset >= offset and b.base_offset < hwm]
        if not batches:
            if partial and max_bytes < 256 << 20:
                max_bytes *= 4
                continue
            stalls += 1
            if stalls >= 3:
                problems.append(("corrupt", f"{topic}/{partition}: no batch at offset {offset} below the high watermark {hwm}; rest of the partition not read"))
                break
            continue
        stalls = 0
        for b in batches:
            b.records = [rec for rec in b.records if rec.offset >= offset]
        out.extend(batches)
        offset = max(offset, batches[-1].last_offset + 1)
    return out, problems


def fetch_kafka(bootstrap: str, want: Callable[[str], bool], verify_crc: bool = True):
    """Raw batches of every partition of the topics `want` accepts:
    ({(topic, partition): [Batch]}, problems)."""
    boot = KafkaConn(bootstrap)
    conns = {bootstrap: boot}
    try:
        brokers, topics, _errors = kafka_metadata(boot)
        result, problems = {}, []
        for topic in sorted(t for t in topics if want(t)):
            for p in sorted(topics[topic]):
                leader = topics[topic][p]
                addr = brokers.get(leader) if leader is not None else None
                if addr is None:
                    raise Unavailable(f"no leader known for {topic}/{p}")
                if addr not in conns:
                    conns[addr] = KafkaConn(addr)
                batches, probs = fetch_partition(conns[addr], topic, p, verify_crc)
                result[(topic, p)] = batches
                problems.extend(probs)
        return result, problems
    finally:
        for c in conns.values():
            c.close()


# ------------------------------------------------------------------------------------
# Schema registry + Avro decoding


class RegistryDecoder:
    """decode(topic, data, is_key) for Confluent-framed Avro, writer schema by id."""

    def __init__(self, url: str, timeout: float = 10.0):
        import fastavro  # noqa: F401  (fail early if missing)

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.cache: Dict[int, object] = {}

    def _get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            body = e.read()[:300].decode("utf-8", "replace")
            raise LookupError(f"registry GET {path}: HTTP {e.code} {body}")
        except (urllib.error.URLError, OSError) as e:
            raise Unavailable(f"schema registry {self.url} unreachable: {e}")

    def check(self):
        self._get("/subjects")

    def schema(self, sid: int):
        if sid not in self.cache:
            from fastavro import parse_schema

            doc = self._get(f"/schemas/ids/{sid}")
            if doc.get("schemaType", "AVRO") != "AVRO":
                raise LookupError(f"schema {sid} is {doc.get('schemaType')}, not AVRO")
            self.cache[sid] = parse_schema(json.loads(doc["schema"]))
        return self.cache[sid]

    def __call__(self, topic: str, data: bytes, is_key: bool):
        from fastavro import schemaless_reader

        if len(data) < 5 or data[0] != 0:
            raise ValueError(f"not Confluent wire format (first bytes {data[:5].hex()})")
        sid = int.from_bytes(data[1:5], "big")
        schema = self.schema(sid)
        bio = io.BytesIO(data[5:])
        obj = schemaless_reader(bio, schema)
        if bio.tell() != len(data) - 5:
            raise ValueError(f"{len(data) - 5 - bio.tell()} trailing bytes after the Avro datum (schema id {sid})")
        return obj


# ------------------------------------------------------------------------------------
# PostgreSQL ground truth (psql, one statement = one snapshot)


def find_psql() -> str:
    p = shutil.which("psql")
    if p:
        return p
    for v in ("15", "16", "17", "18", "14", "13"):
        c = f"/usr/lib/postgresql/{v}/bin/psql"
        if os.path.exists(c):
            return c
    raise Unavailable("psql not found (PATH or /usr/lib/postgresql/*/bin)")


def fetch_truth(conninfo: str, slot: str, timeout: float = 120.0) -> dict:
    lit = "'" + slot.replace("'", "''") + "'"
    sql = (
        "COPY (SELECT 'L', id, k::bigint, seq, txn FROM ledger"
        " UNION ALL SELECT 'A', NULL::bigint, k::bigint, seq, txn FROM acct"
        " UNION ALL SELECT 'S', NULL, NULL, (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, NULL"
        f" FROM pg_replication_slots WHERE slot_name = {lit}) TO STDOUT"
    )
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    try:
        out = subprocess.run(
            [find_psql(), "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
            capture_output=True, env=env, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"psql did not answer within {timeout}s")
    if out.returncode != 0:
        raise Unavailable("PostgreSQL query failed: " + out.stderr.decode("utf-8", "replace").strip())
    ledger, acct = {}, {}
    slot_found, cfl = False, None
    for line in out.stdout.decode().splitlines():
        f = line.split("\t")
        nn = [None if x == "\\N" else int(x) for x in f[1:]]
        if f[0] == "L":
            ledger[nn[0]] = (nn[1], nn[2], nn[3])
        elif f[0] == "A":
            acct[nn[1]] = (nn[2], nn[3])
        elif f[0] == "S":
            slot_found, cfl = True, nn[2]
    return {"ledger": ledger, "acct": acct, "slot_exists": slot_found, "confirmed_flush_lsn": cfl}


# ------------------------------------------------------------------------------------
# The pure checker


def _ranges(nums):
    """[1,2,3,7,9,10] -> "1-3, 7, 9-10"."""
    nums = sorted(nums)
    out, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out)


def _short(items, n=10):
    items = list(items)
    s = ", ".join(str(x) for x in items[:n])
    return s + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass
class _Seg:
    """One Kafka transaction as seen in one partition."""

    ident: Tuple[str, int, int, int]  # (topic, partition, producer id, n-th of the producer)
    producer_id: int
    first: Optional[int] = None
    last: Optional[int] = None
    marker: Optional[int] = None
    outcome: str = "undecided"

    def describe(self):
        where = f"offsets {self.first}-{self.last}" if self.first is not None else "no records"
        m = f", {self.outcome} marker at {self.marker}" if self.marker is not None else ", no marker"
        if self.producer_id < 0 or self.ident[3] < 0:
            return f"non-transactional batch ({where})"
        return f"producer {self.producer_id} txn #{self.ident[3]} ({where}{m})"


def read_committed(topic: str, partition: int, batches: List[Batch], problems: list, stats: dict):
    """Applies read_committed to one partition's batches. Returns the visible records in
    offset order as (Record, _Seg) pairs."""
    pending: Dict[int, List[Record]] = {}
    seg_no: Dict[int, int] = defaultdict(int)
    cur_seg: Dict[int, _Seg] = {}
    visible: List[Tuple[Record, _Seg]] = []
    rs = stats["records"]
    ks = stats["kafka_transactions"]
    for b in batches:
        if b.error:
            problems.append(("corrupt", f"{topic}/{partition}: batch at offsets {b.base_offset}-{b.last_offset} "
                             f"(producer {b.producer_id}, {'control' if b.control else 'data'}, {b.count} records) unreadable: {b.error}"))
            rs["unreadable"] += max(b.count, 0)
            if b.control:
                continue  # outcome unknown: that producer's records stay pending
            if b.transactional:
                seg = cur_seg.setdefault(b.producer_id, _Seg((topic, partition, b.producer_id, seg_no[b.producer_id]), b.producer_id))
                seg.first = b.base_offset if seg.first is None else seg.first
                seg.last = b.last_offset
            continue
        if b.control is not None:
            rs["control"] += 1
            pid = b.producer_id
            recs = pending.pop(pid, [])
            seg = cur_seg.pop(pid, None)
            seg_no[pid] += 1
            if b.control == "unknown":
                problems.append(("undecodable", f"{topic}/{partition}: control batch at {b.base_offset} of producer {pid} "
                                 "has an unknown marker type; its transaction's records are treated as undecided"))
                if recs:
                    pending[pid] = recs
                    cur_seg[pid] = seg
                continue
            if seg is None:
                continue  # a marker for a transaction that wrote nothing here
            seg.marker, seg.outcome = b.base_offset, b.control
            if b.control == "commit":
                rs["committed"] += len(recs)
                ks["committed"] += 1
                visible.extend((r, seg) for r in recs)
            else:
                rs["aborted"] += len(recs)
                ks["aborted"] += 1
                stats["aborted_per_topic"][topic] = stats["aborted_per_topic"].get(topic, 0) + len(recs)
            continue
        if not b.transactional:
            seg = _Seg((topic, partition, b.producer_id, -1 - b.base_offset), -1, b.base_offset, b.last_offset, None, "plain")
            rs["non_transactional"] += len(b.records)
            rs["committed"] += len(b.records)
            visible.extend((r, seg) for r in b.records)
            continue
        pid = b.producer_id
        seg = cur_seg.get(pid)
        if seg is None:
            seg = cur_seg[pid] = _Seg((topic, partition, pid, seg_no[pid]), pid)
        if b.records:
            seg.first = b.records[0].offset if seg.first is None else seg.first
            seg.last = b.records[-1].offset
        pending.setdefault(pid, []).extend(b.records)
    for pid, recs in sorted(pending.items()):
        if not recs:
            continue
        rs["undecided"] += len(recs)
        problems.append(("undecided", f"{topic}/{partition}: {len(recs)} records of producer {pid} "
                         f"(offsets {recs[0].offset}-{recs[-1].offset}) have no commit or abort marker at the end of the log"))
    for pid, seg in cur_seg.items():
        if seg.first is not None and not pending.get(pid):
            # only unreadable batches: their records are unknown
            problems.append(("undecided", f"{topic}/{partition}: unreadable records of producer {pid} "
                             f"(offsets {seg.first}-{seg.last}) have no marker at the end of the log"))
    visible.sort(key=lambda rs_: rs_[0].offset)
    return visible


def audit(truth: dict, partitions_batches: Dict[Tuple[str, int], List[Batch]], decode: Callable,
          *, prefix: str = "shop", offsets_topic: str = "sluice.offsets", slot: str = "sluice",
          max_events: int = 10000, schema: str = "public", allow_resnapshot: bool = False):
    """The checks. `truth` = {"ledger": {id: (k, seq, txn)}, "acct": {k: (seq, txn)},
    "confirmed_flush_lsn": int | None, "slot_exists": bool}; `partitions_batches` =
    {(topic, partition): [Batch, ...]} in log order; `decode(topic, bytes, is_key)` ->
    the decoded key record / Debezium envelope (raises on undecodable input).
    With `allow_resnapshot`, snapshot rows (op r) delivered again by a retaken snapshot
    are not duplicates, and each key's baseline is its last snapshot row.
    Returns (problems [{"kind", "detail"}], stats)."""
    problems: List[Tuple[str, str]] = []
    stats = {
        "records": Counter(committed=0, aborted=0, undecided=0, non_transactional=0, control=0, unreadable=0),
        "kafka_transactions": Counter(committed=0, aborted=0),
        "events_per_topic": {},
        "aborted_per_topic": {},
    }
    acct_topic = f"{prefix}.{schema}.acct"
    ledger_topic = f"{prefix}.{schema}.ledger"
    ledger_truth: Dict[int, tuple] = truth.get("ledger", {})
    acct_truth: Dict[int, tuple] = truth.get("acct", {})
    committed_txns = {t for (_k, _s, t) in ledger_truth.values()} | {t for (_s, t) in acct_truth.values()}
    txn_rows = Counter(t for (_k, _s, t) in ledger_truth.values())
    ledger_txn_of = {(k, s): t for (k, s, t) in ledger_truth.values()}

    # -- read_committed per partition, events decoded -----------------------------------
    events = []  # dicts: topic, partition, offset, seg, op, id, k, seq, txn, lsn
    offsets_recs = []  # (partition, Record)
    for (topic, partition) in sorted(partitions_batches):
        visible = read_committed(topic, partition, partitions_batches[(topic, partition)], problems, stats)
        if topic == offsets_topic:
            offsets_recs.extend((partition, r) for r, _seg in visible)
            continue
        per = stats["events_per_topic"].setdefault(topic, Counter())
        for rec, seg in visible:
            where = f"{topic}/{partition}@{rec.offset}"
            if rec.value is None:
                per["tombstone"] += 1
                continue
            try:
                env = decode(topic, rec.value, False)
            except Unavailable:
                raise
            except Exception as e:  # noqa: BLE001 - any decoding failure is a finding
                problems.append(("undecodable", f"{where}: value: {type(e).__name__}: {e}"))
                per["undecodable"] += 1
                continue
            op = env.get("op") if isinstance(env, dict) else None
            if op not in ("c", "u", "r", "d"):
                problems.append(("undecodable", f"{where}: value is not a Debezium envelope with op c/u/r/d: {str(env)[:200]}"))
                per["undecodable"] += 1
                continue
            per[op] += 1
            if topic not in (acct_topic, ledger_topic):
                continue
            row = env.get("before") if op == "d" else env.get("after")
            src = env.get("source") if isinstance(env.get("source"), dict) else {}
            if not isinstance(row, dict):
                problems.append(("undecodable", f"{where}: op {op} without a row"))
                continue
            ev = {"topic": topic, "partition": partition, "offset": rec.offset, "seg": seg, "op": op,
                  "id": _int(row.get("id")), "k": _int(row.get("k")), "seq": _int(row.get("seq")),
                  "txn": _int(row.get("txn")), "lsn": _int(src.get("lsn"))}
            need = ("id", "k", "seq", "txn") if topic == ledger_topic else ("k", "seq", "txn")
            if op != "d" and any(ev[f] is None for f in need):
                problems.append(("undecodable", f"{where}: row lacks integer fields {need}: {str(row)[:200]}"))
                continue
            pk = "id" if topic == ledger_topic else "k"
            if rec.key is None:
                problems.append(("key", f"{where}: record has no key ({pk}={ev[pk]})"))
            else:
                try:
                    key = decode(topic, rec.key, True)
                    # The key holds exactly the row's primary key columns: ledger's is
                    # (id, k), acct's is k.
                    key_cols = {"id", "k"} if topic == ledger_topic else {"k"}
                    if (not isinstance(key, dict) or set(key) != key_cols
                            or any(_int(v) != ev[f] for f, v in key.items())):
                        problems.append(("key", f"{where}: key {key} does not match the row's {pk}={ev[pk]}"))
                except Unavailable:
                    raise
                except Exception as e:  # noqa: BLE001
                    problems.append(("undecodable", f"{where}: key: {type(e).__name__}: {e}"))
            if op != "d":
                events.append(ev)

    # -- phantom ------------------------------------------------------------------------
    good = []
    for ev in events:
        snapshot_seed = ev["op"] == "r" and ev["topic"] == acct_topic and ev["seq"] == 0
        if ev["txn"] not in committed_txns and not snapshot_seed:
            problems.append(("phantom", f"{ev['topic']}/{ev['partition']}@{ev['offset']}: op {ev['op']} "
                             f"{'id=%s ' % ev['id'] if ev['topic'] == ledger_topic else ''}k={ev['k']} seq={ev['seq']} "
                             f"from txn {ev['txn']}, which PostgreSQL does not hold (rolled back or unknown); "
                             f"in {ev['seg'].describe()}"))
        else:
            good.append(ev)

    # -- ledger: missing / duplicate / mismatch ----------------------------------------
    ledger_seen = defaultdict(list)
    for ev in good:
        if ev["topic"] == ledger_topic:
            ledger_seen[ev["id"]].append(ev)
    def copies(evs):
        """How many times a row arrived: with allow_resnapshot, repeated op r count once."""
        if not allow_resnapshot:
            return len(evs)
        return sum(1 for e in evs if e["op"] != "r") + any(e["op"] == "r" for e in evs)

    for lid, evs in sorted(ledger_seen.items()):
        if copies(evs) > 1:
            problems.append(("duplicate", f"ledger id {lid} (txn {evs[0]['txn']}) committed {len(evs)} times: "
                             + "; ".join(f"{e['topic']}/{e['partition']}@{e['offset']} op {e['op']} in {e['seg'].describe()}" for e in evs)))
        want = ledger_truth.get(lid)
        e = evs[0]
        if want is None:
            problems.append(("mismatch", f"ledger id {lid} (k={e['k']} seq={e['seq']} txn={e['txn']}) at "
                             f"{e['topic']}/{e['partition']}@{e['offset']} is not in PostgreSQL"))
        elif want != (e["k"], e["seq"], e["txn"]):
            problems.append(("mismatch", f"ledger id {lid} at {e['topic']}/{e['partition']}@{e['offset']}: event has "
                             f"(k, seq, txn)=({e['k']}, {e['seq']}, {e['txn']}), PostgreSQL ({want[0]}, {want[1]}, {want[2]})"))
    missing_ids = sorted(set(ledger_truth) - set(ledger_seen))
    if missing_ids:
        by_txn = defaultdict(list)
        for lid in missing_ids:
            by_txn[ledger_truth[lid][2]].append(lid)
        for t, ids in sorted(by_txn.items()):
            problems.append(("missing", f"{len(ids)} ledger rows of txn {t} ({txn_rows[t]} rows in all) have no committed "
                             f"event on {ledger_topic}: ids {_ranges(ids)}"))

    # -- acct: missing / duplicate / order / mismatch -----------------------------------
    acct_events = [ev for ev in good if ev["topic"] == acct_topic]
    by_k = defaultdict(list)
    for ev in acct_events:
        by_k[ev["k"]].append(ev)
    snapshot_taken = any(ev["op"] == "r" for ev in acct_events)
    for k in sorted(set(by_k) | set(acct_truth)):
        evs = by_k.get(k, [])
        final = acct_truth.get(k)
        if final is None:
            problems.append(("mismatch", f"acct k={k} has {len(evs)} committed events but no row in PostgreSQL"))
            continue
        by_seq = defaultdict(list)
        for e in evs:
            by_seq[e["seq"]].append(e)
        for s, dup in sorted(by_seq.items()):
            n = copies(dup)
            if n > 1:
                problems.append(("duplicate", f"acct k={k} seq={s} (txn {dup[0]['txn']}) committed {n} times: "
                                 + "; ".join(f"{e['topic']}/{e['partition']}@{e['offset']} op {e['op']} in {e['seg'].describe()}" for e in dup)))
        seeds = [e["seq"] for e in evs if e["op"] in ("r", "c")]
        if seeds:
            base = seeds[-1] if allow_resnapshot else min(seeds)
        else:
            base = 0
            if snapshot_taken:
                problems.append(("missing", f"acct k={k}: no snapshot (op r) or insert event, though the snapshot covered other keys"))
        want = set(range(base + 1, final[0] + 1))
        got = {e["seq"] for e in evs if e["op"] == "u"}
        miss = sorted(want - got)
        if miss:
            problems.append(("missing", f"acct k={k}: updates seq {_ranges(miss)} ({len(miss)} of {len(want)}; final seq "
                             f"{final[0]}) have no committed event; txns {_short(sorted({ledger_txn_of.get((k, s)) for s in miss}, key=str))}"))
        for e in evs:
            if e["seq"] > final[0]:
                problems.append(("mismatch", f"acct k={k} seq={e['seq']} at {e['topic']}/{e['partition']}@{e['offset']} "
                                 f"is beyond PostgreSQL's final seq {final[0]}"))
            elif e["op"] == "u" and (k, e["seq"]) in ledger_txn_of and ledger_txn_of[(k, e["seq"])] != e["txn"]:
                problems.append(("mismatch", f"acct k={k} seq={e['seq']} at {e['topic']}/{e['partition']}@{e['offset']} has "
                                 f"txn {e['txn']}; PostgreSQL's ledger row for (k, seq) has txn {ledger_txn_of[(k, e['seq'])]}"))
        parts = {e["partition"] for e in evs}
        if len(parts) > 1:
            problems.append(("order", f"acct k={k} has events in several partitions {sorted(parts)}: no order between them"))
        for p in sorted(parts):
            prev, snap_seqs = None, set()
            for e in (x for x in evs if x["partition"] == p):
                if allow_resnapshot and e["op"] == "r":
                    if e["seq"] in snap_seqs:
                        continue  # the same row read again by a retaken snapshot
                    snap_seqs.add(e["seq"])
                if prev is not None and e["seq"] <= prev["seq"]:
                    problems.append(("order", f"acct k={k}: seq {e['seq']} at {acct_topic}/{p}@{e['offset']} (txn {e['txn']}) "
                                     f"after seq {prev['seq']} at @{prev['offset']} (txn {prev['txn']})"))
                prev = e

    # -- atomicity ----------------------------------------------------------------------
    split_txns, large_split = set(), set()
    by_pt = defaultdict(list)
    for ev in good:
        if ev["op"] in ("c", "u"):
            by_pt[(ev["topic"], ev["partition"], ev["txn"])].append(ev)
    for (topic, p, t), evs in sorted(by_pt.items(), key=lambda x: (x[0][0], x[0][1], str(x[0][2]))):
        pieces: Dict[tuple, list] = {}
        for e in evs:  # offset order
            pieces.setdefault(e["seg"].ident, []).append(e)
        if len(pieces) < 2:
            continue
        ident = (lambda e: e["id"]) if topic == ledger_topic else (lambda e: (e["k"], e["seq"]))
        sets = [frozenset(ident(e) for e in pe) for pe in pieces.values()]
        union = frozenset().union(*sets)
        if any(s == union for s in sets):
            continue  # one Kafka transaction holds all of T here; the rest are duplicates
        split_txns.add(t)
        size = 2 * txn_rows[t]
        plist = list(pieces.values())
        desc = "; ".join(f"{len(pe)} events at {pe[0]['offset']}-{pe[-1]['offset']} in {pe[0]['seg'].describe()}" for pe in plist)
        if size < max_events:
            problems.append(("atomicity", f"txn {t} ({size} events, below --max-events {max_events}) is spread over "
                             f"{len(plist)} Kafka transactions in {topic}/{p}: {desc}"))
            continue
        large_split.add(t)
        for a, b in zip(plist, plist[1:]):
            bad = []
            if a[-1]["offset"] > b[0]["offset"]:
                bad.append("pieces interleave in the log")
            if a[0]["seg"].marker is not None and b[0]["seg"].marker is not None and a[0]["seg"].marker > b[0]["seg"].marker:
                bad.append("the later piece committed first")
            la = [e["lsn"] for e in a if e["lsn"] is not None]
            lb = [e["lsn"] for e in b if e["lsn"] is not None]
            if la and lb and max(la) > min(lb):
                bad.append(f"source LSNs go back (piece ends at {max(la)}, next starts at {min(lb)})")
            if topic == ledger_topic and max(e["id"] for e in a) > min(e["id"] for e in b):
                bad.append("ledger ids go back")
            if bad:
                problems.append(("atomicity", f"txn {t} ({size} events, split deliberately) has pieces out of order in "
                                 f"{topic}/{p} ({', '.join(bad)}): {desc}"))
                break

    # -- offsets topic --------------------------------------------------------------------
    last_pos, last_where, parts_with_slot = None, None, set()
    slot_b = slot.encode()
    n_off = 0
    for partition, rec in offsets_recs:
        if rec.key != slot_b:
            continue
        parts_with_slot.add(partition)
        where = f"{offsets_topic}/{partition}@{rec.offset}"
        if rec.value is None:
            last_pos, last_where = None, where  # deliberate reset
            continue
        try:
            pos = json.loads(rec.value)
            if not isinstance(pos, dict) or pos.get("v") != 1 or _int(pos.get("end_lsn")) is None:
                raise ValueError(f"not a v1 position: {rec.value[:200]!r}")
        except ValueError as e:
            problems.append(("undecodable", f"{where}: offsets record: {e}"))
            continue
        n_off += 1
        if last_pos is not None and pos["end_lsn"] < last_pos["end_lsn"]:
            problems.append(("offsets", f"slot {slot}: end_lsn decreases from {last_pos['end_lsn']} ({last_where}) "
                             f"to {pos['end_lsn']} ({where})"))
        last_pos, last_where = pos, where
    if len(parts_with_slot) > 1:
        problems.append(("offsets", f"slot {slot} has records in several partitions {sorted(parts_with_slot)} of {offsets_topic}"))
    cfl = truth.get("confirmed_flush_lsn")
    if last_pos is not None and cfl is not None and cfl > last_pos["end_lsn"]:
        problems.append(("offsets", f"PostgreSQL confirmed_flush_lsn {cfl} of slot {slot} is ahead of the last committed "
                         f"end_lsn {last_pos['end_lsn']} ({last_where}): PostgreSQL was told more than Kafka holds"))

    # -- stats ------------------------------------------------------------------------------
    source_txns = {ev["txn"] for ev in good if ev["op"] in ("c", "u")}
    kinds = Counter(k for k, _ in problems)
    out_stats = {
        "events_per_topic": {t: dict(c) for t, c in sorted(stats["events_per_topic"].items())},
        "aborted_per_topic": dict(sorted(stats["aborted_per_topic"].items())),
        "records": dict(stats["records"]),
        "kafka_transactions": {"committed_segments": stats["kafka_transactions"]["committed"],
                               "aborted_segments": stats["kafka_transactions"]["aborted"],
                               "committed_offsets_records": n_off},
        "source_transactions_seen": len(source_txns),
        "split_transactions": len(split_txns),
        "deliberately_split_transactions": len(large_split),
        "postgres": {"ledger_rows": len(ledger_truth), "acct_rows": len(acct_truth),
                     "committed_txns": len(committed_txns), "slot_exists": truth.get("slot_exists"),
                     "confirmed_flush_lsn": cfl},
        "last_offsets_record": last_pos,
        "partitions": len(partitions_batches),
        "problems_by_kind": dict(sorted(kinds.items())),
    }
    return [{"kind": k, "detail": d} for k, d in problems], out_stats


# ------------------------------------------------------------------------------------
# Command line


def lsn_text(n):
    return f"{n >> 32:X}/{n & 0xFFFFFFFF:X}" if isinstance(n, int) else str(n)


def print_report(problems, stats, shown_per_kind: int):
    print("Sluice exactly-once audit: " + ("OK, no problem" if not problems else f"{len(problems)} problem(s)"))
    by_kind = defaultdict(list)
    for p in problems:
        by_kind[p["kind"]].append(p["detail"])
    for kind, details in sorted(by_kind.items()):
        print(f"\n[{kind}] {len(details)}")
        for d in details[:shown_per_kind]:
            print(f"  - {d}")
        if len(details) > shown_per_kind:
            print(f"  ... {len(details) - shown_per_kind} more (use --json for all)")
    print("\nstats:")
    for t, c in stats["events_per_topic"].items():
        print(f"  {t}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())))
    print("  records: " + ", ".join(f"{k}={v}" for k, v in stats["records"].items()))
    print("  kafka transactions: " + ", ".join(f"{k}={v}" for k, v in stats["kafka_transactions"].items()))
    print(f"  source transactions seen: {stats['source_transactions_seen']}, split: {stats['split_transactions']} "
          f"(deliberately, above --max-events: {stats['deliberately_split_transactions']})")
    pg = stats["postgres"]
    last = stats["last_offsets_record"]
    print(f"  postgres: {pg['ledger_rows']} ledger rows, {pg['acct_rows']} acct rows, {pg['committed_txns']} committed txns, "
          f"slot confirmed_flush_lsn {lsn_text(pg['confirmed_flush_lsn'])}; last committed end_lsn "
          f"{lsn_text(last['end_lsn']) if last else None}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Exactly-once auditor for Sluice (independent of Sluice's code).")
    ap.add_argument("--bootstrap", required=True, help="Kafka broker HOST:PORT")
    ap.add_argument("--registry", required=True, help="schema registry base URL")
    ap.add_argument("--prefix", required=True, help="topic prefix (topics are <prefix>.<schema>.<table>)")
    ap.add_argument("--offsets-topic", default="sluice.offsets")
    ap.add_argument("--slot", default="sluice")
    ap.add_argument("--pg", required=True, help='libpq conninfo, e.g. "host=127.0.0.1 port=5432 user=postgres dbname=shop"')
    ap.add_argument("--max-events", type=int, default=10000,
                    help="source transactions with fewer events must stay in one Kafka transaction per partition")
    ap.add_argument("--schema", default="public", help="PostgreSQL schema of acct and ledger")
    ap.add_argument("--allow-resnapshot", action="store_true",
                    help="snapshot rows (op r) delivered again by a retaken snapshot are not duplicates")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-crc", action="store_true", help="skip CRC-32C verification of record batches")
    ap.add_argument("--show", type=int, default=20, help="problems shown per kind in the text report")
    args = ap.parse_args(argv)
    if args.max_events <= 0:
        ap.error("--max-events must be positive")

    try:
        decoder = RegistryDecoder(args.registry)
        decoder.check()
        # PostgreSQL first: Kafka only grows afterwards, so confirmed_flush_lsn <= the
        # offsets read later holds whenever it held at any moment.
        truth = fetch_truth(args.pg, args.slot)
        prefix_dot = args.prefix + "."
        batches, fetch_problems = fetch_kafka(
            args.bootstrap, lambda t: t.startswith(prefix_dot) or t == args.offsets_topic, not args.no_crc)
        problems, stats = audit(truth, batches, decoder, prefix=args.prefix, offsets_topic=args.offsets_topic,
                                slot=args.slot, max_events=args.max_events, schema=args.schema,
                                allow_resnapshot=args.allow_resnapshot)
    except Unavailable as e:
        msg = f"audit.py: {e}"
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}))
        print(msg, file=sys.stderr)
        return 2
    problems = [{"kind": k, "detail": d} for k, d in fetch_problems] + problems
    if fetch_problems:
        stats["problems_by_kind"] = dict(Counter(p["kind"] for p in problems))
    if args.json:
        print(json.dumps({"ok": not problems, "problems": problems, "stats": stats}, default=str))
    else:
        print_report(problems, stats, args.show)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
