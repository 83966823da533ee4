"""Conformance of Sluice's schema registry with Confluent's Python client.

Usage: python conformance.py http://127.0.0.1:PORT

Exercises every method of confluent_kafka's SchemaRegistryClient against a
fresh registry, and an AvroSerializer / AvroDeserializer round trip. Prints
one line per check group and exits non-zero at the first failure.
"""

import json
import sys
import traceback

from confluent_kafka.schema_registry import (
    ConfigCompatibilityLevel,
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
    ServerConfig,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

URL = sys.argv[1]
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def expect_error(fn, status, code, what):
    try:
        result = fn()
    except SchemaRegistryError as e:
        check(e.http_status_code == status and e.error_code == code,
              f"{what}: expected HTTP {status} / {code}, got {e.http_status_code} / {e.error_code}: {e.error_message}")
        return e
    raise AssertionError(f"{what}: expected an error {status}/{code}, got {result!r}")


def client():
    # No retries: an error must surface at once.
    return SchemaRegistryClient({"url": URL, "max.retries": 0})


def record(name, fields):
    return json.dumps({"type": "record", "name": name, "namespace": "conf",
                       "fields": fields})


USER_V1 = record("User", [{"name": "name", "type": "string"}])
USER_V2 = record("User", [{"name": "name", "type": "string"},
                          {"name": "age", "type": ["null", "int"], "default": None}])
USER_BAD = record("User", [{"name": "name", "type": "string"},
                           {"name": "email", "type": "string"}])


def avro(text):
    return Schema(text, "AVRO")


def same_schema(a, b):
    return json.loads(a) == json.loads(b)


def test_register_and_read():
    c = client()
    check(c.config()["url"] == URL, "config()")
    check(c.get_schema_types() == ["AVRO"], "get_schema_types")
    id1 = c.register_schema("users-value", avro(USER_V1))
    check(id1 == 1, f"first id is 1, got {id1}")
    check(c.register_schema("users-value", avro(USER_V1)) == id1, "re-register same id")
    full = c.register_schema_full_response("users-value", avro(USER_V2))
    check(full.schema_id == 2, f"register_schema_full_response id {full.schema_id}")
    check(c.register_schema("other-value", avro(USER_V1), normalize_schemas=True) == id1,
          "same schema in another subject, same id")

    fresh = client()
    s = fresh.get_schema(id1)
    check(same_schema(s.schema_str, USER_V1) and s.schema_type == "AVRO", "get_schema")
    s = fresh.get_schema(id1, subject_name="users-value")
    check(same_schema(s.schema_str, USER_V1), "get_schema with subject")
    expect_error(lambda: fresh.get_schema(999), 404, 40403, "get_schema unknown id")
    expect_error(lambda: fresh.get_schema_by_guid("00000000-0000-0000-0000-000000000000"),
                 404, 404, "get_schema_by_guid (guids are not supported)")

    latest = fresh.get_latest_version("users-value")
    check((latest.schema_id, latest.version, latest.subject) == (2, 2, "users-value"),
          f"get_latest_version {latest}")
    v1 = fresh.get_version("users-value", 1)
    check(v1.schema_id == 1 and same_schema(v1.schema.schema_str, USER_V1), "get_version 1")
    check(fresh.get_version("users-value", "latest").version == 2, "get_version latest")
    expect_error(lambda: fresh.get_version("users-value", 7), 404, 40402, "get_version missing")
    expect_error(lambda: fresh.get_version("nobody", 1), 404, 40401, "get_version no subject")
    check(fresh.get_versions("users-value") == [1, 2], "get_versions")
    check(fresh.get_subjects() == ["other-value", "users-value"], "get_subjects")
    check(fresh.get_subjects(subject_prefix="users") == ["users-value"], "get_subjects prefix")
    check(fresh.get_subjects(offset=1, limit=1) == ["users-value"], "get_subjects paging")
    check(sorted(fresh.get_subjects_by_schema_id(id1)) == ["other-value", "users-value"],
          "get_subjects_by_schema_id")
    pairs = fresh.get_schema_versions(id1)
    check(sorted((p.subject, p.version) for p in pairs) == [("other-value", 1), ("users-value", 1)],
          "get_schema_versions")

    found = fresh.lookup_schema("users-value", avro(USER_V2))
    check((found.schema_id, found.version) == (2, 2), f"lookup_schema {found}")
    expect_error(lambda: client().lookup_schema("users-value", avro(USER_BAD)), 404, 40403,
                 "lookup_schema unknown schema")
    expect_error(lambda: client().lookup_schema("nobody", avro(USER_V1)), 404, 40401,
                 "lookup_schema unknown subject")

    check(fresh.get_referenced_by("users-value", 1) == [], "get_referenced_by")
    meta = fresh.get_latest_with_metadata("users-value", {})
    check(meta.version == 2, "get_latest_with_metadata without metadata")
    expect_error(lambda: fresh.get_latest_with_metadata("users-value", {"owner": "x"}), 404, 40403,
                 "get_latest_with_metadata (no schema has metadata)")
    check(fresh.get_contexts() == ["."], "get_contexts")
    expect_error(lambda: c.register_schema("users-value", avro('{"type": "record"}')), 422, 42201,
                 "invalid schema")
    fresh.clear_latest_caches()
    fresh.clear_caches()


def test_compatibility():
    c = client()
    check(c.get_compatibility() == "BACKWARD", "default global level")
    e = expect_error(lambda: c.register_schema("users-value", avro(USER_BAD)), 409, 40901,
                     "incompatible registration")
    check("incompatible with an earlier schema" in e.error_message, e.error_message)
    check(c.test_compatibility("users-value", avro(USER_V2)) is True, "test_compatibility ok")
    check(c.test_compatibility("users-value", avro(USER_BAD)) is False, "test_compatibility bad")
    check(c.test_compatibility("users-value", avro(USER_BAD), version=1, verbose=True) is False,
          "test_compatibility version 1 verbose")
    check(c.test_compatibility_all_versions("users-value", avro(USER_V2)) is True,
          "test_compatibility_all_versions")
    check(c.test_compatibility("fresh-subject", avro(USER_BAD)) is True,
          "test_compatibility on an empty subject")
    expect_error(lambda: c.test_compatibility("users-value", avro(USER_V2), version=9), 404, 40402,
                 "test_compatibility missing version")

    check(c.set_compatibility(level="FULL") == {"compatibility": "FULL"}, "set_compatibility global")
    check(c.get_compatibility() == "FULL", "get_compatibility global")
    check(c.set_compatibility("users-value", "none") == {"compatibility": "NONE"},
          "set_compatibility subject")
    check(c.get_compatibility("users-value") == "NONE", "get_compatibility subject")
    expect_error(lambda: c.get_compatibility("other-value"), 404, 40408,
                 "get_compatibility without subject level")
    expect_error(lambda: c.set_compatibility(level="SIDEWAYS"), 422, 42203, "invalid level")
    check(c.register_schema("users-value", avro(USER_BAD)) == 3, "NONE allows anything")

    cfg = c.set_config(config=ServerConfig(compatibility=ConfigCompatibilityLevel.BACKWARD_TRANSITIVE))
    check(cfg == {"compatibility": "BACKWARD_TRANSITIVE"}, f"set_config global: {cfg}")
    got = c.get_config()
    check(got.compatibility_level == ConfigCompatibilityLevel.BACKWARD_TRANSITIVE, f"get_config {got}")
    c.set_config("other-value", ServerConfig(compatibility=ConfigCompatibilityLevel.FORWARD))
    check(c.get_config("other-value").compatibility_level == ConfigCompatibilityLevel.FORWARD,
          "get_config subject")
    old = c.delete_config("other-value")
    check(old.compatibility_level == ConfigCompatibilityLevel.FORWARD, f"delete_config subject {old}")
    expect_error(lambda: c.delete_config("other-value"), 404, 40401, "delete_config twice")
    old = c.delete_config()
    check(old.compatibility_level == ConfigCompatibilityLevel.BACKWARD_TRANSITIVE, "delete_config global")
    check(c.get_compatibility() == "BACKWARD", "global level back to default")
    c.delete_config("users-value")


def test_modes():
    c = client()
    check(c.get_global_mode() == "READWRITE", "get_global_mode")
    expect_error(lambda: c.get_mode("users-value"), 404, 40409, "get_mode unset")
    check(c.update_mode("users-value", "READONLY") == "READONLY", "update_mode")
    check(c.get_mode("users-value") == "READONLY", "get_mode")
    expect_error(lambda: client().register_schema("users-value", avro(record("Other", []))), 422, 42205,
                 "register in READONLY")
    expect_error(lambda: c.delete_version("users-value", 1), 422, 42205, "delete in READONLY")
    check(c.delete_mode("users-value") == "READONLY", "delete_mode returns the old mode")
    expect_error(lambda: c.update_mode("users-value", "SIDEWAYS"), 422, 42204, "invalid mode")
    expect_error(lambda: c.update_global_mode("IMPORT"), 422, 42205, "IMPORT with subjects")
    check(c.update_global_mode("READONLY") == "READONLY", "update_global_mode")
    expect_error(lambda: client().register_schema("x-value", avro(USER_V1)), 422, 42205,
                 "global READONLY")
    check(c.update_global_mode("READWRITE") == "READWRITE", "back to READWRITE")
    check(c.update_mode("imported", "IMPORT") == "IMPORT", "subject IMPORT mode")
    expect_error(lambda: client().register_schema("imported", avro(USER_V1)), 422, 42205,
                 "IMPORT needs an id")
    c.delete_mode("imported")


def test_deletes():
    c = client()
    check(c.delete_version("users-value", 3) == 3, "delete_version soft")
    expect_error(lambda: c.delete_version("users-value", 3), 404, 40406, "soft delete twice")
    expect_error(lambda: c.delete_version("users-value", 2, permanent=True), 404, 40407,
                 "permanent before soft")
    check(c.get_versions("users-value") == [1, 2], "soft-deleted version hidden")
    check(c.get_versions("users-value", deleted=True) == [1, 2, 3], "get_versions deleted")
    check(c.get_versions("users-value", deleted_only=True) == [3], "get_versions deleted_only")
    check(c.get_version("users-value", 3, deleted=True).schema_id == 3, "get_version deleted")
    expect_error(lambda: client().get_version("users-value", 3), 404, 40402, "deleted version hidden")
    check(same_schema(client().get_schema(3).schema_str, USER_BAD), "deleted version's id resolves")
    # A fresh client: confluent-kafka 2.12.1's cache raises KeyError in
    # remove_by_subject_version (it deletes a schema id from rs_schema_index)
    # once get_version() has cached the version being deleted.
    check(client().delete_version("users-value", 3, permanent=True) == 3, "delete_version permanent")
    expect_error(lambda: client().get_schema(3), 404, 40403, "permanently deleted id")

    expect_error(lambda: c.delete_subject("other-value", permanent=True), 404, 40405,
                 "permanent subject delete before soft")
    check(c.delete_subject("other-value") == [1], "delete_subject soft")
    expect_error(lambda: c.delete_subject("other-value"), 404, 40404, "soft delete subject twice")
    check("other-value" not in c.get_subjects(), "deleted subject hidden")
    check("other-value" in c.get_subjects(deleted=True), "get_subjects deleted")
    check(c.get_subjects(deleted_only=True) == ["other-value"], "get_subjects deleted_only")
    check(c.delete_subject("other-value", permanent=True) == [1], "delete_subject permanent")
    check("other-value" not in c.get_subjects(deleted=True), "gone for good")
    expect_error(lambda: c.delete_subject("nobody"), 404, 40401, "delete unknown subject")
    # Ids are not reused after a permanent delete.
    new_id = client().register_schema("fresh-value", avro(record("Fresh", [])))
    check(new_id == 4, f"next id after deleting id 3 is 4, got {new_id}")


def test_serde_round_trip():
    c = client()
    topic = "payments"
    ser = AvroSerializer(c, USER_V2)
    de = AvroDeserializer(c)
    ctx = SerializationContext(topic, MessageField.VALUE)
    value = {"name": "Ada", "age": 36}
    data = ser(value, ctx)
    check(data[0] == 0, "magic byte")
    schema_id = int.from_bytes(data[1:5], "big")
    check(schema_id == client().lookup_schema("payments-value", avro(USER_V2)).schema_id,
          "the serializer registered under payments-value")
    check(de(data, ctx) == value, "AvroDeserializer round trip")
    # A deserializer with an empty cache fetches the writer schema by id.
    check(AvroDeserializer(client())(data, ctx) == value, "round trip with a fresh client")
    # use.latest.version with auto.register off.
    ser2 = AvroSerializer(c, None, conf={"auto.register.schemas": False, "use.latest.version": True})
    check(de(ser2({"name": "Bob", "age": None}, ctx), ctx) == {"name": "Bob", "age": None},
          "use.latest.version round trip")
    key_ctx = SerializationContext(topic, MessageField.KEY)
    kser = AvroSerializer(c, '"string"')
    check(AvroDeserializer(c)(kser("k1", key_ctx), key_ctx) == "k1", "key round trip")


def main():
    groups = [test_register_and_read, test_compatibility, test_modes, test_deletes,
              test_serde_round_trip]
    for g in groups:
        before = CHECKS
        try:
            g()
        except Exception:
            traceback.print_exc()
            print(f"FAILED in {g.__name__}")
            sys.exit(1)
        print(f"ok {g.__name__}: {CHECKS - before} checks")
    print(f"conformance: {CHECKS} checks passed")


if __name__ == "__main__":
    main()
