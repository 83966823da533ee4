#!/usr/bin/env python3
"""Self-tests of the exactly-once auditor (audit.py).

Synthetic logs and ground truth feed the pure checker one fault at a time; the record
batch parser is checked on hand-built batches (CRC, truncation, garbage); and an
end-to-end test writes one committed and one aborted transaction with confluent-kafka's
transactional Producer to a real tansu broker and reads them back with the auditor's own
Kafka client (skipped, with a note, when the tansu binary is absent).

Run: python tests/audit/test_audit.py  (or python -m unittest from tests/audit)."""

import http.server
import io
import itertools
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep tests/audit free of __pycache__

import audit as A  # noqa: E402

ACCT, LEDGER, OFFS = "shop.public.acct", "shop.public.ledger", "sluice.offsets"


# ---------------------------------------------------------------------------------------
# Synthetic logs: values are JSON, decoded by json.loads


def jdecode(topic, data, is_key):
    return json.loads(data)


def acct_ev(k, seq, txn, op="u", lsn=None):
    v = {"before": None, "after": {"k": k, "seq": seq, "txn": txn}, "source": {"lsn": lsn}, "op": op}
    return (json.dumps({"k": k}).encode(), json.dumps(v).encode())


def ledger_ev(i, k, seq, txn, op="c", lsn=None):
    v = {"before": None, "after": {"id": i, "k": k, "seq": seq, "txn": txn, "pad": "x"}, "source": {"lsn": lsn}, "op": op}
    return (json.dumps({"id": i, "k": k}).encode(), json.dumps(v).encode())


def off_rec(end_lsn, slot="sluice"):
    return (slot.encode(), json.dumps({"v": 1, "end_lsn": end_lsn, "resume": None, "snapshot_pending": False}).encode())


class Log:
    """Partitions of batches with offsets assigned as a broker would."""

    def __init__(self):
        self.parts = defaultdict(list)
        self.next = defaultdict(int)

    def data(self, topic, pid, recs, txn=True, p=0):
        if not recs:
            return
        base = self.next[(topic, p)]
        records = [A.Record(base + i, k, v) for i, (k, v) in enumerate(recs)]
        self.parts[(topic, p)].append(A.Batch(base, base + len(recs) - 1, pid, 0, txn, None, records, len(recs)))
        self.next[(topic, p)] += len(recs)

    def marker(self, topic, pid, commit=True, p=0):
        o = self.next[(topic, p)]
        self.parts[(topic, p)].append(A.Batch(o, o, pid, 0, True, "commit" if commit else "abort", [], 1))
        self.next[(topic, p)] += 1

    def ktxn(self, pid, acct=(), ledger=(), end_lsn=None, commit=True, markers=True):
        """One Kafka transaction of producer `pid` over the three topics."""
        touched = []
        if acct:
            self.data(ACCT, pid, list(acct))
            touched.append(ACCT)
        if ledger:
            self.data(LEDGER, pid, list(ledger))
            touched.append(LEDGER)
        if end_lsn is not None:
            self.data(OFFS, pid, [off_rec(end_lsn)])
            touched.append(OFFS)
        if markers:
            for t in touched:
                self.marker(t, pid, commit)


class Workload:
    """Keys 1..3 with seq 0 before the start; transactions given as (T, [k, ...], committed)."""

    def __init__(self, txns, keys=(1, 2, 3)):
        self.acct = {k: [0, 0] for k in keys}
        self.ledger = {}
        self.events = {}  # T -> (acct events, ledger events)
        next_id, lsn = 1, 1000
        for t, ks, committed in txns:
            acct_evs, ledger_evs = [], []
            cur = {k: self.acct[k][0] for k in keys}
            rows = []
            for k in ks:
                cur[k] += 1
                lsn += 10
                acct_evs.append(acct_ev(k, cur[k], t, lsn=lsn))
                lsn += 10
                ledger_evs.append(ledger_ev(next_id, k, cur[k], t, lsn=lsn))
                rows.append((next_id, k, cur[k]))
                next_id += 1
            self.events[t] = (acct_evs, ledger_evs)
            if committed:
                for k in ks:
                    self.acct[k] = [cur[k], t]
                for i, k, s in rows:
                    self.ledger[i] = (k, s, t)

    def truth(self, cfl=None):
        return {"ledger": dict(self.ledger), "acct": {k: tuple(v) for k, v in self.acct.items()},
                "slot_exists": True, "confirmed_flush_lsn": cfl}

    def snapshot(self, log, pid=1, end_lsn=100):
        log.ktxn(pid, acct=[acct_ev(k, 0, 0, op="r") for k in sorted(self.acct)], end_lsn=end_lsn)


# T1: keys 1,2; T2: keys 2,3; T3 rolled back (key 1); T4: keys 1,3
TXNS = [(1, [1, 2], True), (2, [2, 3], True), (3, [1], False), (4, [1, 3], True)]


def clean_log(w, skip=()):
    log = Log()
    w.snapshot(log)
    lsn = 200
    for t, _ks, committed in TXNS:
        if committed and t not in skip:
            a, l = w.events[t]
            log.ktxn(1, acct=a, ledger=l, end_lsn=lsn)
            lsn += 100
    return log


def run(truth, log, **kw):
    problems, stats = A.audit(truth, dict(log.parts), jdecode, **kw)
    return problems, stats


def kinds(problems):
    return {p["kind"] for p in problems}


class PureChecks(unittest.TestCase):
    def setUp(self):
        self.w = Workload(TXNS)
        self.lsn = itertools.count(200, 10)  # increasing end_lsn of the offsets records

    def show(self, problems):
        return "\n".join(f"{p['kind']}: {p['detail']}" for p in problems)

    def test_clean(self):
        log = clean_log(self.w)
        problems, stats = run(self.w.truth(cfl=400), log)
        self.assertEqual(problems, [], self.show(problems))
        self.assertEqual(stats["events_per_topic"][ACCT], {"r": 3, "u": 6})
        self.assertEqual(stats["events_per_topic"][LEDGER], {"c": 6})
        self.assertEqual(stats["source_transactions_seen"], 3)
        self.assertEqual(stats["split_transactions"], 0)
        self.assertEqual(stats["records"]["aborted"], 0)
        self.assertEqual(stats["kafka_transactions"]["committed_offsets_records"], 4)

    def test_duplicate(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            if t == 2:
                l = l + [l[0]]  # ledger row written twice in the same Kafka transaction
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"duplicate"}, self.show(problems))
        self.assertIn("ledger id 3", problems[0]["detail"])

    def test_duplicate_replayed_transaction(self):
        log = clean_log(self.w)
        a, l = self.w.events[4]
        log.ktxn(2, acct=a, ledger=l, end_lsn=999)  # a second producer replays T4
        problems, _ = run(self.w.truth(), log)
        self.assertIn("duplicate", kinds(problems), self.show(problems))
        self.assertIn("order", kinds(problems))  # seq 2 after seq 2 for keys 1 and 3
        self.assertTrue(kinds(problems) <= {"duplicate", "order"}, self.show(problems))

    def test_missing(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            if t == 2:
                a, l = a[:1], l[:1]  # key 3's update and ledger row lost
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"missing"}, self.show(problems))
        text = self.show(problems)
        self.assertIn("ids 4", text)
        self.assertIn("acct k=3: updates seq 1", text)

    def test_missing_whole_transaction(self):
        log = clean_log(self.w, skip=(2,))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"missing"}, self.show(problems))

    def test_aborted_batch_not_visible(self):
        log = Log()
        self.w.snapshot(log)
        a1, l1 = self.w.events[1]
        log.ktxn(1, acct=a1, ledger=l1, end_lsn=200, commit=False)  # aborted, with markers
        log.ktxn(2, acct=a1, ledger=l1, end_lsn=200)  # the same data committed by another producer
        for t in (2, 4):
            a, l = self.w.events[t]
            log.ktxn(2, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, stats = run(self.w.truth(), log)
        self.assertEqual(problems, [], self.show(problems))
        self.assertEqual(stats["records"]["aborted"], 5)  # 2 acct + 2 ledger + 1 offsets
        self.assertEqual(stats["kafka_transactions"]["aborted_segments"], 3)
        self.assertEqual(stats["events_per_topic"][LEDGER], {"c": 6})

    def test_aborted_interleaved_with_committed(self):
        # Producers 1 and 2 interleave; 1 aborts after 2 committed the same rows.
        log = Log()
        self.w.snapshot(log)
        a1, l1 = self.w.events[1]
        log.data(ACCT, 1, a1)
        log.data(ACCT, 2, a1)
        log.marker(ACCT, 2, True)
        log.marker(ACCT, 1, False)
        log.ktxn(2, ledger=l1, end_lsn=200)
        for t in (2, 4):
            a, l = self.w.events[t]
            log.ktxn(2, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, stats = run(self.w.truth(), log)
        self.assertEqual(problems, [], self.show(problems))
        self.assertEqual(stats["records"]["aborted"], 2)

    def test_reordering(self):
        log = Log()
        self.w.snapshot(log)
        for t in (2, 1, 4):  # T2 (k=2 seq 2) committed before T1 (k=2 seq 1)
            a, l = self.w.events[t]
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"order"}, self.show(problems))
        self.assertIn("acct k=2: seq 1", problems[0]["detail"])

    def test_phantom(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 3, 4):  # T3 was rolled back in PostgreSQL but is committed in Kafka
            a, l = self.w.events[t]
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"phantom"}, self.show(problems))
        self.assertEqual(len(problems), 2)
        self.assertTrue(all("txn 3" in p["detail"] for p in problems))

    def test_atomicity_split(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            if t == 2:  # T2 (4 events) committed in two Kafka transactions
                log.ktxn(1, acct=a[:1], ledger=l[:1], end_lsn=next(self.lsn))
                log.ktxn(1, acct=a[1:], ledger=l[1:], end_lsn=next(self.lsn))
            else:
                log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, stats = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"atomicity"}, self.show(problems))
        self.assertEqual(len(problems), 2)  # one per partition
        self.assertEqual(stats["split_transactions"], 1)
        # With --max-events 4, T2 may be split deliberately: in order, that is fine...
        problems, stats = run(self.w.truth(), log, max_events=4)
        self.assertEqual(problems, [], self.show(problems))
        self.assertEqual(stats["deliberately_split_transactions"], 1)

    def test_atomicity_large_split_out_of_order(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            if t == 2:  # the second half first (different keys, so per-key order holds)
                log.ktxn(1, acct=a[1:], ledger=l[1:], end_lsn=next(self.lsn))
                log.ktxn(1, acct=a[:1], ledger=l[:1], end_lsn=next(self.lsn))
            else:
                log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log, max_events=4)
        self.assertEqual(kinds(problems), {"atomicity"}, self.show(problems))
        self.assertIn("out of order", problems[0]["detail"])

    def test_undecided_tail(self):
        log = clean_log(self.w)
        a, l = self.w.events[3]  # an open transaction at the end (never decided)
        log.ktxn(3, acct=a, ledger=l, end_lsn=999, markers=False)
        problems, stats = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"undecided"}, self.show(problems))
        self.assertEqual(len(problems), 3)  # acct, ledger, offsets partitions
        self.assertEqual(stats["records"]["undecided"], 3)
        self.assertEqual(stats["last_offsets_record"]["end_lsn"], 400)  # the open one is not visible

    def test_offsets_decreasing(self):
        log = Log()
        self.w.snapshot(log, end_lsn=100)
        for t, lsn in ((1, 300), (2, 200), (4, 400)):
            a, l = self.w.events[t]
            log.ktxn(1, acct=a, ledger=l, end_lsn=lsn)
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"offsets"}, self.show(problems))
        self.assertIn("decreases from 300", problems[0]["detail"])

    def test_offsets_confirmed_ahead(self):
        log = clean_log(self.w)  # last end_lsn 400
        problems, _ = run(self.w.truth(cfl=400), log)
        self.assertEqual(problems, [])
        problems, _ = run(self.w.truth(cfl=401), log)
        self.assertEqual(kinds(problems), {"offsets"}, self.show(problems))
        self.assertIn("confirmed_flush_lsn 401", problems[0]["detail"])

    def test_aborted_offsets_record_ignored(self):
        log = clean_log(self.w)
        log.ktxn(1, end_lsn=50, commit=False)  # a lower end_lsn, but aborted
        problems, _ = run(self.w.truth(cfl=400), log)
        self.assertEqual(problems, [], self.show(problems))

    def test_undecodable_never_crashes(self):
        log = clean_log(self.w)
        log.ktxn(1, acct=[(b"\xff", b"\x00\x01garbage")], ledger=[(b"{}", b'{"op": "c", "after": {"id": "x"}}')], end_lsn=500)
        log.data(OFFS, 1, [(b"sluice", b"not json")])
        log.marker(OFFS, 1)
        log.parts[(LEDGER, 0)].append(A.Batch(99, 105, 1, 0, True, None, [], 7, "CRC-32C mismatch"))

        def picky(topic, data, is_key):
            if data.startswith(b"\x00"):
                raise RuntimeError("boom")
            return json.loads(data)

        problems, _ = A.audit(self.w.truth(), dict(log.parts), picky)
        ks = kinds(problems)
        self.assertIn("undecodable", ks, self.show(problems))
        self.assertIn("corrupt", ks)
        self.assertTrue(ks <= {"undecodable", "corrupt", "undecided"}, self.show(problems))

    def test_tombstones_and_non_transactional(self):
        log = clean_log(self.w)
        log.data(ACCT, -1, [(json.dumps({"k": 1}).encode(), None)], txn=False)
        problems, stats = run(self.w.truth(), log)
        self.assertEqual(problems, [], self.show(problems))
        self.assertEqual(stats["events_per_topic"][ACCT]["tombstone"], 1)
        self.assertEqual(stats["records"]["non_transactional"], 1)

    def test_resnapshot(self):
        # The snapshot was retaken after a crash (after T1 committed): its rows come again.
        log = Log()
        self.w.snapshot(log)
        log.ktxn(1, acct=[acct_ev(1, 0, 0, op="r")], end_lsn=next(self.lsn))  # first, unfinished
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"duplicate", "order"}, self.show(problems))
        problems, _ = run(self.w.truth(), log, allow_resnapshot=True)
        self.assertEqual(problems, [], self.show(problems))
        # a retaken snapshot that read k=2 after T1 (seq 1): T1's update for k=2 is covered
        log = Log()
        log.ktxn(1, acct=[acct_ev(k, 0, 0, op="r") for k in (1, 2)], end_lsn=next(self.lsn))
        log.ktxn(2, acct=[acct_ev(1, 1, 1, op="r"), acct_ev(2, 1, 1, op="r"), acct_ev(3, 0, 0, op="r")],
                 ledger=[ledger_ev(1, 1, 1, 1, op="r"), ledger_ev(2, 2, 1, 1, op="r")], end_lsn=next(self.lsn))
        for t in (2, 4):
            a, l = self.w.events[t]
            log.ktxn(2, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log, allow_resnapshot=True)
        self.assertEqual(problems, [], self.show(problems))
        # a duplicated streamed update is still a duplicate
        a, l = self.w.events[4]
        log.ktxn(2, acct=a[:1], end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log, allow_resnapshot=True)
        self.assertEqual(kinds(problems), {"duplicate", "order"}, self.show(problems))

    def test_key_mismatch(self):
        log = Log()
        self.w.snapshot(log)
        for t in (1, 2, 4):
            a, l = self.w.events[t]
            if t == 1:
                a = [(json.dumps({"k": 99}).encode(), a[0][1])] + a[1:]
            log.ktxn(1, acct=a, ledger=l, end_lsn=next(self.lsn))
        problems, _ = run(self.w.truth(), log)
        self.assertEqual(kinds(problems), {"key"}, self.show(problems))


# ---------------------------------------------------------------------------------------
# Record batch encoding (for parser tests), independent of the parser


def zz(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vbytes(b):
    return zz(-1) if b is None else zz(len(b)) + b


def encode_batch(base, recs, pid=7, transactional=True, control=None):
    """recs: [(key, value)]; control: None, "commit" or "abort"."""
    if control:
        recs = [(struct.pack(">hh", 0, 1 if control == "commit" else 0), struct.pack(">hih", 0, 0, 0))]
    body_recs = b""
    for i, (k, v) in enumerate(recs):
        r = b"\x00" + zz(0) + zz(i) + vbytes(k) + vbytes(v) + zz(0)
        body_recs += zz(len(r)) + r
    attrs = (0x10 if transactional else 0) | (0x20 if control else 0)
    after_crc = struct.pack(">hiqqqhii", attrs, len(recs) - 1, 0, 0, pid, 0, 0, len(recs)) + body_recs
    crc = A.crc32c(after_crc)
    body = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", base, len(body)) + body


class BatchParsing(unittest.TestCase):
    def test_crc32c_known_value(self):
        self.assertEqual(A.crc32c(b"123456789"), 0xE3069283)

    def test_round_trip(self):
        data = encode_batch(10, [(b"k", b"v"), (None, b"w"), (b"t", None)]) + encode_batch(13, [], control="commit")
        batches, partial = A.parse_batches(data)
        self.assertFalse(partial)
        self.assertEqual(len(batches), 2)
        b = batches[0]
        self.assertIsNone(b.error)
        self.assertEqual((b.base_offset, b.last_offset, b.producer_id, b.transactional), (10, 12, 7, True))
        self.assertEqual([(r.offset, r.key, r.value) for r in b.records], [(10, b"k", b"v"), (11, None, b"w"), (12, b"t", None)])
        self.assertEqual(batches[1].control, "commit")
        self.assertEqual(A.parse_batches(encode_batch(0, [], control="abort"))[0][0].control, "abort")

    def test_bad_crc_truncation_garbage(self):
        data = bytearray(encode_batch(0, [(b"k", b"value")]))
        data[-3] ^= 0xFF
        b = A.parse_batches(bytes(data))[0][0]
        self.assertIn("CRC", b.error)
        first = encode_batch(0, [(b"k", b"value")])
        good = first + encode_batch(1, [(b"k2", b"v2")])
        for cut in range(len(good) + 1):
            batches, partial = A.parse_batches(good[:cut])
            self.assertEqual(partial, cut not in (0, len(first), len(good)), cut)
            self.assertEqual(len(batches), (cut >= len(first)) + (cut == len(good)))
            self.assertTrue(all(b.error is None for b in batches))
        rng = random.Random(1)
        for _ in range(300):
            junk = bytearray(good)
            for _ in range(rng.randint(1, 6)):
                junk[rng.randrange(len(junk))] = rng.randrange(256)
            try:
                A.parse_batches(bytes(junk), verify_crc=rng.random() < 0.5)
            except A.WireError:
                pass  # an unreadable batch length: reported by the fetcher


# ---------------------------------------------------------------------------------------
# End to end against a real tansu broker

TANSU = os.path.join(HERE, "..", "..", ".tools", "bin", "tansu")

KEY_SCHEMA = {"type": "record", "name": "Key", "namespace": "shop.public.acct", "fields": [{"name": "k", "type": "int"}]}
VALUE_SCHEMA = {
    "type": "record", "name": "Envelope", "namespace": "shop.public.acct",
    "fields": [
        {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
            {"name": "k", "type": "int"}, {"name": "seq", "type": "long"}, {"name": "txn", "type": "long"}]}], "default": None},
        {"name": "after", "type": ["null", "Value"], "default": None},
        {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
                                    "fields": [{"name": "lsn", "type": ["null", "long"], "default": None}]}},
        {"name": "op", "type": "string"},
    ],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry(http.server.ThreadingHTTPServer):
    """Serves /subjects and /schemas/ids/{1,2}."""

    def __init__(self):
        schemas = {1: KEY_SCHEMA, 2: VALUE_SCHEMA}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/subjects":
                    body = b'["shop.public.acct-key","shop.public.acct-value"]'
                elif self.path.startswith("/schemas/ids/") and int(self.path.rsplit("/", 1)[1]) in schemas:
                    body = json.dumps({"schema": json.dumps(schemas[int(self.path.rsplit("/", 1)[1])])}).encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    self.wfile.write(b'{"error_code":40403}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), H)


def confluent(sid, schema, obj):
    from fastavro import parse_schema, schemaless_writer

    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(schema), obj)
    return b"\x00" + sid.to_bytes(4, "big") + buf.getvalue()


class EndToEnd(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(TANSU):
            print(f"\nNOTE: {os.path.normpath(TANSU)} is absent: skipping the end-to-end test against tansu", file=sys.stderr)
            self.skipTest("tansu binary absent")
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            print("\nNOTE: confluent_kafka not importable: skipping the end-to-end test", file=sys.stderr)
            self.skipTest("confluent_kafka absent")
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.broker = subprocess.Popen([TANSU, "broker", "--listener-url", url, "--advertised-listener-url", url],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env=dict(os.environ, RUST_LOG="warn"))
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.broker.poll() is not None:
                    self.broker.kill()
                    raise AssertionError("tansu did not start")
                time.sleep(0.1)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def tearDown(self):
        self.broker.kill()
        self.broker.wait()

    def test_committed_and_aborted_transactions(self):
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futs = admin.create_topics([NewTopic(t, 1, 1) for t in (ACCT, LEDGER, OFFS)])
        for f in futs.values():
            f.result(30)

        def ev(k, seq, txn, lsn):
            key = confluent(1, KEY_SCHEMA, {"k": k})
            val = confluent(2, VALUE_SCHEMA, {"before": None, "after": {"k": k, "seq": seq, "txn": txn},
                                              "source": {"lsn": lsn}, "op": "u"})
            return key, val

        p = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": "audit-selftest",
                      "enable.idempotence": True, "linger.ms": 5})
        p.init_transactions(30)
        # committed: T1 updates keys 1 and 2
        p.begin_transaction()
        for k in (1, 2):
            key, val = ev(k, 1, 1, 100 + k)
            p.produce(ACCT, val, key)
        p.produce(OFFS, json.dumps({"v": 1, "end_lsn": 200, "resume": None, "snapshot_pending": False}).encode(), b"sluice")
        p.commit_transaction(30)
        # aborted: T2 (rolled back in the "database") updates key 1 again; flushed first so
        # the records reach the log before the abort marker
        p.begin_transaction()
        key, val = ev(1, 2, 2, 300)
        p.produce(ACCT, val, key)
        p.produce(ACCT, None, key)
        p.produce(OFFS, json.dumps({"v": 1, "end_lsn": 100, "resume": None, "snapshot_pending": False}).encode(), b"sluice")
        p.flush(30)
        p.abort_transaction(30)

        want = lambda t: t.startswith("shop.") or t == OFFS  # noqa: E731
        # The abort marker may take a moment to land; retry briefly until it is there.
        deadline = time.time() + 20
        while True:
            batches, fetch_problems = A.fetch_kafka(self.bootstrap, want)
            markers = [b.control for b in batches.get((ACCT, 0), []) if b.control]
            if markers.count("abort") >= 1 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(fetch_problems, [])
        self.assertEqual(set(batches), {(ACCT, 0), (LEDGER, 0), (OFFS, 0)})

        # read_committed on the raw acct partition
        problems, stats = [], {"records": A.Counter(), "kafka_transactions": A.Counter(), "aborted_per_topic": {}}
        vis = A.read_committed(ACCT, 0, batches[(ACCT, 0)], problems, stats)
        self.assertEqual(problems, [])
        raw_acct = [r for b in batches[(ACCT, 0)] for r in b.records]
        self.assertEqual(len(raw_acct), 4, "the aborted records must be in the raw log")
        self.assertEqual([r.value for r, _ in vis], [ev(1, 1, 1, 101)[1], ev(2, 1, 1, 102)[1]])
        self.assertEqual(stats["records"]["committed"], 2)
        self.assertEqual(stats["records"]["aborted"], 2)
        self.assertEqual(stats["kafka_transactions"]["committed"], 1)
        self.assertEqual(stats["kafka_transactions"]["aborted"], 1)
        self.assertEqual([b.control for b in batches[(ACCT, 0)] if b.control], ["commit", "abort"])

        # the whole checker with the registry decoder: clean, with the aborted data counted
        reg = Registry()
        threading.Thread(target=reg.serve_forever, daemon=True).start()
        try:
            dec = A.RegistryDecoder(f"http://127.0.0.1:{reg.server_address[1]}")
            dec.check()
            truth = {"ledger": {}, "acct": {1: (1, 1), 2: (1, 1), 3: (0, 0)}, "slot_exists": True, "confirmed_flush_lsn": 200}
            problems, stats = A.audit(truth, batches, dec)
            self.assertEqual(problems, [], problems)
            self.assertEqual(stats["events_per_topic"][ACCT], {"u": 2})
            self.assertEqual(stats["records"]["aborted"], 3)
            self.assertEqual(stats["last_offsets_record"]["end_lsn"], 200)
            # a truth in which T1 was rolled back: its events are phantoms, and the key
            # whose update is absent from Kafka is missing
            truth2 = {"ledger": {}, "acct": {1: (0, 0), 2: (0, 0), 3: (1, 5)}, "slot_exists": True, "confirmed_flush_lsn": 250}
            problems, _ = A.audit(truth2, batches, dec)
            self.assertEqual(kinds(problems), {"phantom", "missing", "offsets"}, problems)
            # an unknown schema id is a finding, not a crash
            bad = {k: list(v) for k, v in batches.items()}
            bad[(ACCT, 0)] = [A.Batch(b.base_offset, b.last_offset, b.producer_id, b.producer_epoch, b.transactional,
                                      b.control, [A.Record(r.offset, r.key, b"\x00\x00\x00\x00\x09" + (r.value or b"")[5:])
                                                  for r in b.records], b.count) for b in batches[(ACCT, 0)]]
            problems, _ = A.audit(truth, bad, dec)
            self.assertEqual(kinds(problems), {"undecodable", "missing"}, problems)
        finally:
            reg.shutdown()
            reg.server_close()



class Services(unittest.TestCase):
    def test_unreachable_services_are_unavailable(self):
        with self.assertRaises(A.Unavailable):
            A.fetch_kafka(f"127.0.0.1:{free_port()}", lambda t: True)
        with self.assertRaises(A.Unavailable):
            A.RegistryDecoder(f"http://127.0.0.1:{free_port()}").check()


if __name__ == "__main__":
    unittest.main(verbosity=2)
