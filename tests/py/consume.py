#!/usr/bin/env python3
"""Independent reader for Sluice's topics: confluent-kafka's Consumer, SchemaRegistryClient
and AvroDeserializer (not Sluice code). Prints one JSON object per record:
{"topic","partition","offset","key","value","key_schema_id","value_schema_id"}.
Values Avro decodes to Decimal or bytes are printed as strings (Decimal) and hex (bytes);
NaN and infinite floats as the strings "NaN", "Infinity", "-Infinity"."""
import argparse
import warnings
import base64
import datetime
import decimal
import json
import math
import sys
import time

warnings.filterwarnings("ignore")

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField


def plain(v):
    if isinstance(v, float) and not math.isfinite(v):
        # JSON has no NaN or infinities: tagged strings.
        return "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, (datetime.date, datetime.time)):
        # Avro logical types (Kafka Connect's Date, Time, Timestamp) decode to these.
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "hex:" + bytes(v).hex()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str):
        # fastavro may return (branch name, value) for named unions; keep the value
        return plain(v[1])
    return v


def schema_id(raw):
    if raw is None:
        return None
    if len(raw) < 5 or raw[0] != 0:
        raise SystemExit(f"not Confluent wire format: first bytes {raw[:5]!r}")
    return int.from_bytes(raw[1:5], "big")


def show(r):
    v = r["value"]
    key = json.dumps(r["key"])
    if v is None:
        print(f"offset {r['offset']}: key={key} tombstone (value null)", flush=True)
        return
    print(f"offset {r['offset']}: op={v['op']} key={key} value schema id={r['value_schema_id']}")
    print(f"    before: {json.dumps(v['before'])}")
    print(f"    after:  {json.dumps(v['after'])}")
    src = v["source"]
    print(f"    source: snapshot={src['snapshot']} txId={src['txId']} lsn={src['lsn']} ts_ms={src['ts_ms']}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", required=True, action="append")
    ap.add_argument("--count", type=int, required=True, help="stop after this many records")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--offset", type=int, default=None, help="start offset (default: beginning)")
    ap.add_argument("--pretty", action="store_true", help="human-readable output instead of JSON lines")
    ap.add_argument("--property", action="append", default=[], help="librdkafka KEY=VALUE for the consumer (e.g. security.protocol=ssl)")
    ap.add_argument("--reader-latest", action="store_true", help="decode values with the subject's latest schema as the reader schema (one topic)")
    args = ap.parse_args()

    sr = SchemaRegistryClient({"url": args.registry})
    deser = AvroDeserializer(sr)
    value_deser = deser
    if args.reader_latest:
        latest = sr.get_latest_version(f"{args.topic[0]}-value").schema.schema_str
        value_deser = AvroDeserializer(sr, schema_str=latest)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "sluice-test-reader",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "topic.metadata.refresh.interval.ms": 1000,
        **dict(p.split("=", 1) for p in args.property),
    })
    start = OFFSET_BEGINNING if args.offset is None else args.offset
    consumer.assign([TopicPartition(t, 0, start) for t in args.topic])
    seen = 0
    deadline = time.time() + args.timeout
    while seen < args.count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            # Topic not created yet: keep polling until the deadline.
            print(f"consumer: {msg.error()}", file=sys.stderr)
            continue
        ctx_k = SerializationContext(msg.topic(), MessageField.KEY)
        ctx_v = SerializationContext(msg.topic(), MessageField.VALUE)
        out = {
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": plain(deser(msg.key(), ctx_k)) if msg.key() is not None else None,
            "value": plain(value_deser(msg.value(), ctx_v)) if msg.value() is not None else None,
            "key_schema_id": schema_id(msg.key()),
            "value_schema_id": schema_id(msg.value()),
        }
        if args.pretty:
            show(out)
        else:
            print(json.dumps(out, sort_keys=True), flush=True)
        seen += 1
    consumer.close()
    if seen < args.count:
        print(f"consumer: only {seen} of {args.count} records within {args.timeout}s", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
