#!/usr/bin/env python3
"""Generate (reader, writer) Avro schema pairs with the oracle's verdict.

The oracle is PyPI `avro` 1.12's `avro.compatibility.ReaderWriterCompatibilityChecker`,
a port of Avro-Java's `SchemaCompatibility` (what Confluent's registry runs).
Output: JSON lines `{"reader": <schema>, "writer": <schema>, "compatible": bool, "why": [...]}`
where `why` names the generator steps that produced the pair (for diagnostics only).

    python gen.py --seed 1 --count 6000 --out corpus.jsonl

Deterministic for a given seed and avro version. Pairs are built by generating a
random schema and mutating a copy (field added/removed/renamed, defaults, type
promotions, unions on either side, enum symbols and defaults, fixed sizes, names,
namespaces and aliases, logical types incl. decimal precision/scale, recursive
types, ...), then orienting the pair at random. Fixed tables (all primitive pairs,
logical types) come first.

A share of the recursive pairs are ones where Java's memo (a pair under evaluation
counts as compatible, and results found meanwhile are kept) changes the verdict;
a memo-less copy of the checker is used to find them, never for verdicts.

Pairs are dropped when either schema fails to parse in Python, when a schema would
be rejected by Avro-Java (duplicate named union branches), or when the Python port
is known to answer differently from Java for that pair:

- record/enum/fixed aliases: Java resolves an unqualified alias against the
  schema's namespace, Python compares it as written;
- a reader field whose name and aliases match more than one writer field (or the
  same one twice): Java throws (Confluent: incompatible), Python takes the
  direct match;
- `"namespace": ""` inside a namespaced type: Java reads it as the null
  namespace, Python (`namespace or None`) as "inherit the enclosing one".

The Rust unit tests cover those cases with Java's answers.
"""

import argparse
import copy
import json
import random
import sys
import warnings

import avro.schema
from avro.compatibility import (
    CompatibleResult,
    ReaderWriter,
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
)

warnings.simplefilter("ignore")

PRIMS = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
NUMERIC_UP = {"int": ["long", "float", "double"], "long": ["float", "double"], "float": ["double"],
              "string": ["bytes"], "bytes": ["string"]}
NUMERIC_DOWN = {"long": ["int"], "float": ["int", "long"], "double": ["int", "long", "float"]}
RECORD_NAMES = ["Rec", "Item", "Node", "Event", "Inner", "Payload", "Entry"]
ENUM_NAMES = ["Color", "Kind", "Status", "Suit"]
FIXED_NAMES = ["Hash", "Md5", "Uuid", "Money"]
NAMESPACES = ["com.acme", "org.example.v1", "a.b", "x"]
FIELD_NAMES = ["id", "name", "value", "count", "ts", "tags", "amount", "kind", "meta", "f1", "f2", "f3",
               "note", "next", "score"]
SYMBOLS = ["A", "B", "C", "D", "E", "F", "RED", "GREEN", "BLUE", "UNKNOWN"]
LOGICAL = [
    {"type": "int", "logicalType": "date"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "long", "logicalType": "local-timestamp-millis"},
    {"type": "string", "logicalType": "uuid"},
]


def is_named_def(t):
    return isinstance(t, dict) and t.get("type") in ("record", "enum", "fixed")


def prim_of(t):
    """Underlying primitive name of a primitive schema (string or object form)."""
    if isinstance(t, str) and t in PRIMS:
        return t
    if isinstance(t, dict) and t.get("type") in PRIMS:
        return t["type"]
    return None


class Gen:
    def __init__(self, rng):
        self.rng = rng

    # ------------------------------------------------------------------ generation
    def schema(self):
        """A fresh schema; mostly records."""
        self.defined = {}  # full name -> definition (document order)
        r = self.rng.random()
        if r < 0.8:
            return self.record(0, self.rng.choice([None, None] + NAMESPACES), explicit_ns=True)
        return self.type(1, None)

    def full(self, name, ns):
        return f"{ns}.{name}" if ns else name

    def pick_name(self, pool, ns):
        base = self.rng.choice(pool)
        name = base
        i = 2
        while self.full(name, ns) in self.defined:
            name = f"{base}{i}"
            i += 1
        return name

    def named_ns(self, enclosing, explicit_ns):
        """(namespace attribute or None, effective namespace)."""
        if explicit_ns or self.rng.random() < 0.25:
            ns = self.rng.choice(NAMESPACES + ["", None])
            if ns is None:
                return None, enclosing
            return ns, (ns or None)
        return None, enclosing

    def record(self, depth, ns, explicit_ns=False):
        attr, eff = self.named_ns(ns, explicit_ns)
        name = self.pick_name(RECORD_NAMES, eff)
        rec = {"type": "record", "name": name}
        if attr is not None:
            rec["namespace"] = attr
        full = self.full(name, eff)
        self.defined[full] = rec
        fields = []
        used = set()
        for _ in range(self.rng.randint(1, 4 if depth == 0 else 3)):
            fname = self.rng.choice(FIELD_NAMES)
            if fname in used:
                continue
            used.add(fname)
            if depth < 3 and self.rng.random() < 0.12:
                # recursive reference to the enclosing record
                ref = name if self.rng.random() < 0.7 else full
                t = self.rng.choice([["null", ref], {"type": "array", "items": ref}, {"type": "map", "values": ref}])
            else:
                t = self.type(depth + 1, eff)
            f = {"name": fname, "type": t}
            if self.rng.random() < 0.35:
                f["default"] = None  # fixed up later
            fields.append(f)
        rec["fields"] = fields
        return rec

    def type(self, depth, ns):
        rng = self.rng
        choices = [("prim", 30), ("logical", 7), ("enum", 7), ("fixed", 5), ("array", 7), ("map", 5),
                   ("union", 12), ("record", 10 if depth < 3 else 0), ("ref", 8 if self.defined else 0),
                   ("sameunion", 2 if depth < 3 else 0)]
        kind = rng.choices([c for c, _ in choices], [w for _, w in choices])[0]
        if kind == "prim":
            p = rng.choice(PRIMS)
            return {"type": p} if rng.random() < 0.1 else p
        if kind == "logical":
            return self.logical()
        if kind == "enum":
            return self.enum(ns)
        if kind == "fixed":
            return self.fixed(ns)
        if kind == "array":
            return {"type": "array", "items": self.type(depth + 1, ns)}
        if kind == "map":
            return {"type": "map", "values": self.type(depth + 1, ns)}
        if kind == "record":
            return self.record(depth, ns)
        if kind == "ref":
            full = rng.choice(list(self.defined))
            short = full.rsplit(".", 1)[-1]
            space = full.rsplit(".", 1)[0] if "." in full else None
            return short if space == ns and rng.random() < 0.7 else full
        if kind == "sameunion":
            return self.same_name_union(depth, ns)
        return self.union(depth, ns)

    def logical(self):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            prec = rng.randint(1, 20)
            t = {"type": "bytes", "logicalType": "decimal", "precision": prec, "scale": rng.randint(0, prec)}
            if rng.random() < 0.1:
                t["scale"] = prec + 1  # invalid: ignored by Java and Python
            return t
        return copy.deepcopy(rng.choice(LOGICAL))

    def enum(self, ns):
        attr, eff = self.named_ns(ns, False)
        name = self.pick_name(ENUM_NAMES, eff)
        syms = self.rng.sample(SYMBOLS, self.rng.randint(1, 4))
        e = {"type": "enum", "name": name, "symbols": syms}
        if attr is not None:
            e["namespace"] = attr
        if self.rng.random() < 0.3:
            e["default"] = self.rng.choice(syms)
        self.defined[self.full(name, eff)] = e
        return e

    def fixed(self, ns):
        attr, eff = self.named_ns(ns, False)
        name = self.pick_name(FIXED_NAMES, eff)
        f = {"type": "fixed", "name": name, "size": self.rng.choice([2, 4, 8, 16])}
        if attr is not None:
            f["namespace"] = attr
        if self.rng.random() < 0.25:
            f["logicalType"] = "decimal"
            f["precision"] = self.rng.randint(1, 2 * f["size"])
            f["scale"] = self.rng.randint(0, 2)
        self.defined[self.full(name, eff)] = f
        return f

    def union(self, depth, ns):
        branches = []
        keys = set()
        for _ in range(self.rng.randint(1, 4)):
            b = self.type(depth + 1, ns)
            if isinstance(b, list):
                continue
            k = self.branch_key(b, ns)
            if k is None or k in keys:
                continue
            keys.add(k)
            branches.append(b)
        if not branches:
            branches = ["null"]
        if "null" not in branches and self.rng.random() < 0.5:
            branches.insert(0 if self.rng.random() < 0.7 else len(branches), "null")
        return branches

    def same_name_union(self, depth, ns):
        """Records with the same simple name in different namespaces (Java
        compares simple names, so both match a writer record)."""
        name = self.rng.choice(RECORD_NAMES)
        branches = ["null"] if self.rng.random() < 0.5 else []
        for space in self.rng.sample(NAMESPACES, 2):
            full = f"{space}.{name}"
            if full in self.defined:
                continue
            rec = {"type": "record", "name": name, "namespace": space, "fields": []}
            self.defined[full] = rec
            for fname in self.rng.sample(FIELD_NAMES[:6], self.rng.randint(1, 2)):
                f = {"name": fname, "type": self.rng.choice(["int", "string", "long"])}
                if self.rng.random() < 0.3:
                    f["default"] = None
                rec["fields"].append(f)
            branches.append(rec)
        return branches if len(branches) > 1 else ["null", "int"]

    def branch_key(self, b, ns):
        """Java's union branch identity (type name, or full name for named types)."""
        p = prim_of(b)
        if p:
            return p
        if isinstance(b, dict):
            t = b.get("type")
            if t in ("array", "map"):
                return t
            if t in ("record", "enum", "fixed"):
                eff = b.get("namespace", ns) or None
                return self.full(b["name"], eff) if "." not in b["name"] else b["name"]
            if isinstance(t, str):
                return t  # logical over primitive handled above
        if isinstance(b, str):
            return b if "." in b or not ns else f"{ns}.{b}"
        return None

    # ------------------------------------------------------------------ recursive families
    def chain(self, ns, names, external):
        """Nested records `names[0] > names[1] > ...` in namespace `ns`, each with a
        back reference to an ancestor; a nested record may instead be a reference
        to a same-named type of another family (`external`, full names)."""
        rng = self.rng

        def build(i):
            fields = []
            for fname in rng.sample(["x", "y", "z"], rng.randint(0, 2)):
                f = {"name": fname, "type": rng.choice(["int", "long", "string", "double"])}
                if rng.random() < 0.3:
                    f["default"] = None
                fields.append(f)
            if i + 1 < len(names):
                ext = [e for e in external if e.rsplit(".", 1)[-1] == names[i + 1]]
                t = rng.choice(ext) if ext and rng.random() < 0.8 else build(i + 1)
                fields.append({"name": f"m{i}", "type": t})
            anc = names[0] if rng.random() < 0.6 else names[rng.randrange(0, i + 1)]
            back = rng.choice([["null", anc], {"type": "array", "items": anc}, {"type": "map", "values": anc},
                               [anc, "null"]])
            fields.append({"name": "back", "type": back})
            rng.shuffle(fields)
            return {"type": "record", "name": names[i], "fields": fields}

        root = build(0)
        root["namespace"] = ns
        return root

    def recursive_family(self):
        """Recursive record families with the same simple names in several
        namespaces, unions of them sharing named types: the shapes where Java's
        memo (pairs under evaluation count as compatible, results are reused)
        decides the verdict."""
        rng = self.rng
        names = ["N", "M", "L"][: rng.choice([1, 2, 2, 2, 3])]
        spaces = rng.sample(["a", "b", "c", "d"], rng.randint(2, 3))
        variants, defined = [], []
        for sp in spaces:
            v = self.chain(sp, names, defined)
            variants.append(v)
            defined.extend(f"{sp}.{n}" for n in names)
        single = self.chain("w", names, [])
        union = (["null"] if rng.random() < 0.3 else []) + variants
        shape = rng.random()
        if shape < 0.55:
            return union, single, ["recursive_union_reads"]
        if shape < 0.75:
            return single, union, ["recursive_union_writes"]
        if shape < 0.85:
            return union, copy.deepcopy(union), ["recursive_union_both"]
        return variants[0], single, ["recursive_records"]

    # ------------------------------------------------------------------ traversal
    @staticmethod
    def sites(root):
        """Paths to every schema position (box[0] is the root)."""
        out = []

        def walk(node, path):
            out.append(path)
            if isinstance(node, dict):
                t = node.get("type")
                if t in ("record", "error"):
                    for i, f in enumerate(node.get("fields", [])):
                        walk(f["type"], path + ["fields", i, "type"])
                elif t == "array":
                    walk(node["items"], path + ["items"])
                elif t == "map":
                    walk(node["values"], path + ["values"])
            elif isinstance(node, list):
                for i, b in enumerate(node):
                    walk(b, path + [i])

        walk(root[0], [0])
        return out

    @staticmethod
    def get(root, path):
        node = root
        for p in path:
            node = node[p]
        return node

    @staticmethod
    def put(root, path, value):
        parent = root
        for p in path[:-1]:
            parent = parent[p]
        parent[path[-1]] = value

    def ns_at(self, root, path):
        """Effective namespace at a schema position (enclosing named type's)."""
        ns = None
        node = root
        for p in path:
            if is_named_def(node) and node.get("type") == "record":
                ns = self.eff_ns(node, ns)
            node = node[p]
        return ns

    @staticmethod
    def eff_ns(node, enclosing):
        name = node["name"]
        if "." in name:
            return name.rsplit(".", 1)[0]
        if "namespace" in node and node["namespace"] is not None:
            return node["namespace"] or None
        return enclosing

    # ------------------------------------------------------------------ mutation
    def mutate(self, schema, n):
        root = [copy.deepcopy(schema)]
        applied = []
        for _ in range(n):
            sites = self.sites(root)
            path = self.rng.choice(sites)
            node = self.get(root, path)
            name = self.mutate_at(root, path, node)
            if name:
                applied.append(name)
        return root[0], applied

    def mutate_at(self, root, path, node):
        rng = self.rng
        ns = self.ns_at(root, path)
        self.defined = self.collect_defined(root)
        if isinstance(node, str) and node in PRIMS:
            r = rng.random()
            if r < 0.3 and node in NUMERIC_UP:
                self.put(root, path, rng.choice(NUMERIC_UP[node]))
                return "promote"
            if r < 0.45 and node in NUMERIC_DOWN:
                self.put(root, path, rng.choice(NUMERIC_DOWN[node]))
                return "demote"
            if r < 0.65 and not self.in_union(root, path):
                self.put(root, path, ["null", node] if rng.random() < 0.7 else [node, "null"])
                return "wrap_union"
            if r < 0.75:
                opts = [lt for lt in LOGICAL if lt["type"] == node]
                if node == "bytes" or not opts:
                    p = rng.randint(1, 12)
                    if node == "bytes":
                        self.put(root, path, {"type": "bytes", "logicalType": "decimal", "precision": p,
                                              "scale": rng.randint(0, p)})
                        return "add_decimal"
                else:
                    self.put(root, path, copy.deepcopy(rng.choice(opts)))
                    return "add_logical"
            self.put(root, path, rng.choice([p for p in PRIMS if p != node]))
            return "replace_prim"
        if isinstance(node, str):  # reference to a named type
            r = rng.random()
            if r < 0.4 and not self.in_union(root, path):
                self.put(root, path, ["null", node])
                return "wrap_ref_union"
            if r < 0.7 and self.defined:
                self.put(root, path, rng.choice(list(self.defined)))
                return "other_ref"
            self.put(root, path, rng.choice(PRIMS))
            return "ref_to_prim"
        if isinstance(node, list):
            return self.mutate_union(root, path, node, ns)
        t = node.get("type")
        if t in PRIMS:
            return self.mutate_logical(root, path, node)
        if t == "record":
            return self.mutate_record(root, path, node, ns)
        if t == "enum":
            return self.mutate_enum(root, path, node, ns)
        if t == "fixed":
            return self.mutate_fixed(root, path, node, ns)
        if t in ("array", "map"):
            r = rng.random()
            if r < 0.3:
                other = "map" if t == "array" else "array"
                inner = node["items"] if t == "array" else node["values"]
                self.put(root, path, {"type": other, ("items" if other == "array" else "values"): inner})
                return "array_map_swap"
            if r < 0.5 and not self.in_union(root, path):
                self.put(root, path, ["null", node])
                return "wrap_union"
            return None  # items/values are sites of their own
        return None

    def in_union(self, root, path):
        return len(path) > 1 and isinstance(self.get(root, path[:-1]), list)

    def mutate_logical(self, root, path, node):
        rng = self.rng
        lt = node.get("logicalType")
        r = rng.random()
        if lt == "decimal" and r < 0.5:
            if rng.random() < 0.5:
                node["precision"] = max(1, node.get("precision", 1) + rng.choice([-2, -1, 1, 3]))
            else:
                node["scale"] = max(0, node.get("scale", 0) + rng.choice([-1, 1, 2]))
            return "decimal_params"
        if r < 0.7:
            self.put(root, path, node["type"])
            return "drop_logical"
        if node["type"] in NUMERIC_UP:
            node["type"] = rng.choice(NUMERIC_UP[node["type"]])
            return "logical_base_change"
        self.put(root, path, copy.deepcopy(rng.choice(LOGICAL)))
        return "logical_swap"

    def mutate_union(self, root, path, node, ns):
        rng = self.rng
        r = rng.random()
        if r < 0.25 and len(node) > 1:
            node.pop(rng.randrange(len(node)))
            return "union_remove_branch"
        if r < 0.5:
            b = self.type(3, ns)
            k = self.branch_key(b, ns)
            if not isinstance(b, list) and k not in {self.branch_key(x, ns) for x in node}:
                node.insert(rng.randint(0, len(node)), b)
                return "union_add_branch"
            return None
        if r < 0.7 and len(node) > 1:
            rng.shuffle(node)
            return "union_reorder"
        if r < 0.85:
            self.put(root, path, rng.choice(node))
            return "union_collapse"
        return None

    def mutate_record(self, root, path, rec, ns):
        rng = self.rng
        fields = rec["fields"]
        ops = ["add_field", "add_field", "remove_field", "rename_field", "field_alias", "toggle_default",
               "reorder_fields", "rename_record", "change_namespace", "record_alias", "field_to_self_ref"]
        op = rng.choice(ops)
        eff = self.eff_ns(rec, ns)
        if op == "add_field":
            used = {f["name"] for f in fields}
            free = [n for n in FIELD_NAMES if n not in used]
            if not free:
                return None
            f = {"name": rng.choice(free), "type": self.type(2, eff)}
            if rng.random() < 0.55:
                f["default"] = None
            fields.insert(rng.randint(0, len(fields)), f)
            return "add_field_default" if "default" in f else "add_field_required"
        if op == "remove_field" and fields:
            fields.pop(rng.randrange(len(fields)))
            return "remove_field"
        if op == "rename_field" and fields:
            f = rng.choice(fields)
            used = {x["name"] for x in fields}
            free = [n for n in FIELD_NAMES if n not in used]
            if not free:
                return None
            old = f["name"]
            f["name"] = rng.choice(free)
            if rng.random() < 0.6:
                f["aliases"] = [old]
                return "rename_field_alias"
            return "rename_field"
        if op == "field_alias" and fields:
            f = rng.choice(fields)
            f["aliases"] = rng.sample(FIELD_NAMES, rng.randint(1, 2))
            return "field_alias"
        if op == "toggle_default" and fields:
            f = rng.choice(fields)
            if "default" in f:
                del f["default"]
                return "drop_default"
            f["default"] = None
            return "add_default"
        if op == "reorder_fields" and len(fields) > 1:
            rng.shuffle(fields)
            return "reorder_fields"
        if op in ("rename_record", "change_namespace", "record_alias"):
            return self.rename_named(root, path, rec, ns, op, RECORD_NAMES)
        if op == "field_to_self_ref" and fields:
            f = rng.choice(fields)
            f["type"] = ["null", self.full(rec["name"], eff) if "." not in rec["name"] else rec["name"]]
            f["default"] = None
            return "field_to_self_ref"
        return None

    def rename_named(self, root, path, node, ns, op, pool):
        """Rename / re-namespace a named type (fixing references) or give it an alias."""
        rng = self.rng
        old_eff = self.eff_ns(node, ns)
        old_full = self.full(node["name"].rsplit(".", 1)[-1], old_eff)
        if op == "record_alias":
            node["aliases"] = [self.alias_for(rng.choice(list(self.defined) or [old_full]), old_eff)]
            return "named_alias"
        if op == "rename_record":
            new_name = self.pick_name(pool, old_eff)
            node["name"] = new_name if "." not in node["name"] else f"{old_eff}.{new_name}" if old_eff else new_name
            alias_roll = rng.random()
            if alias_roll < 0.7:
                node["aliases"] = [self.alias_for(old_full, old_eff)]
            tag = "rename_named_alias" if alias_roll < 0.7 else "rename_named"
        else:
            new_ns = rng.choice(NAMESPACES + [""])
            if "." in node["name"]:
                node["name"] = node["name"].rsplit(".", 1)[-1]
            node["namespace"] = new_ns
            tag = "change_namespace"
            if rng.random() < 0.3:
                node["aliases"] = [old_full]
                tag = "change_namespace_alias"
        new_eff = self.eff_ns(node, ns)
        new_full = self.full(node["name"].rsplit(".", 1)[-1], new_eff)
        if new_full in self.defined and new_full != old_full:
            return None  # would redefine; parse will fail and the pair is dropped
        # Point references at the new full name.
        for p in self.sites(root):
            n = self.get(root, p)
            if isinstance(n, str) and n not in PRIMS:
                if n == old_full or (n == old_full.rsplit(".", 1)[-1] and self.ns_at(root, p) == old_eff):
                    self.put(root, p, new_full)
        return tag

    def alias_for(self, full, ns):
        """An alias naming `full`: fully qualified, or short (resolved against the
        aliased type's namespace by Java, compared as written by Python)."""
        short = full.rsplit(".", 1)[-1]
        return short if self.rng.random() < 0.3 else full

    def mutate_enum(self, root, path, e, ns):
        rng = self.rng
        op = rng.choice(["add_symbol", "remove_symbol", "reorder_symbols", "set_default", "drop_default",
                         "rename_record", "change_namespace", "record_alias"])
        syms = e["symbols"]
        if op == "add_symbol":
            free = [s for s in SYMBOLS if s not in syms]
            if not free:
                return None
            syms.insert(rng.randint(0, len(syms)), rng.choice(free))
            return "enum_add_symbol"
        if op == "remove_symbol" and len(syms) > 1:
            s = syms.pop(rng.randrange(len(syms)))
            if e.get("default") == s:
                e["default"] = syms[0]
            return "enum_remove_symbol"
        if op == "reorder_symbols":
            rng.shuffle(syms)
            return "enum_reorder"
        if op == "set_default":
            e["default"] = rng.choice(syms)
            return "enum_set_default"
        if op == "drop_default" and "default" in e:
            del e["default"]
            return "enum_drop_default"
        if op in ("rename_record", "change_namespace", "record_alias"):
            return self.rename_named(root, path, e, ns, op, ENUM_NAMES)
        return None

    def mutate_fixed(self, root, path, f, ns):
        rng = self.rng
        op = rng.choice(["size", "size", "decimal", "rename_record", "change_namespace", "record_alias"])
        if op == "size":
            f["size"] = rng.choice([s for s in [1, 2, 4, 8, 12, 16] if s != f["size"]])
            return "fixed_size"
        if op == "decimal":
            if "logicalType" in f:
                for k in ("logicalType", "precision", "scale"):
                    f.pop(k, None)
                return "fixed_drop_decimal"
            f["logicalType"] = "decimal"
            f["precision"] = rng.randint(1, 2 * f["size"])
            f["scale"] = rng.randint(0, 3)
            return "fixed_add_decimal"
        return self.rename_named(root, path, f, ns, op, FIXED_NAMES)

    def collect_defined(self, root):
        out = {}
        for p in self.sites(root):
            n = self.get(root, p)
            if is_named_def(n):
                out[self.full(n["name"].rsplit(".", 1)[-1], self.eff_ns(n, self.ns_at(root, p)))] = n
        return out

    # ------------------------------------------------------------------ defaults
    def fix_defaults(self, schema):
        """Give every field that has a default a value valid for its type (first
        union branch), so the schemas are also valid for Java's default checks."""
        names = {}

        def resolve(ref, ns):
            if "." not in ref and ns and f"{ns}.{ref}" in names:
                return names[f"{ns}.{ref}"]
            return names.get(ref)

        def value_for(t, ns, depth):
            if depth > 6:
                return None
            if isinstance(t, list):
                return value_for(t[0], ns, depth + 1) if t else None
            if isinstance(t, str):
                if t in PRIMS:
                    return prim_default(t)
                d = resolve(t, ns)
                return value_for(d[0], d[1], depth + 1) if d else None
            ty = t.get("type")
            if ty in PRIMS:
                return prim_default(ty)
            if ty == "array":
                return []
            if ty == "map":
                return {}
            if ty == "enum":
                return t.get("default", t["symbols"][0])
            if ty == "fixed":
                return "a" * t["size"]
            if ty == "record":
                inner = self.eff_ns(t, ns)
                return {f["name"]: value_for(f["type"], inner, depth + 1) for f in t.get("fields", [])
                        if "default" not in f}
            return None

        def prim_default(p):
            return {"null": None, "boolean": True, "int": 1, "long": 2, "float": 1.5, "double": 2.5,
                    "bytes": "\u00ff", "string": "x"}[p]

        def walk(t, ns):
            if isinstance(t, list):
                for b in t:
                    walk(b, ns)
            elif isinstance(t, dict):
                ty = t.get("type")
                if ty in ("record", "enum", "fixed"):
                    eff = self.eff_ns(t, ns)
                    names[self.full(t["name"].rsplit(".", 1)[-1], eff)] = (t, ns)
                    if ty == "record":
                        for f in t.get("fields", []):
                            walk(f["type"], eff)
                            if "default" in f:
                                f["default"] = value_for(f["type"], eff, 0)
                elif ty == "array":
                    walk(t["items"], ns)
                elif ty == "map":
                    walk(t["values"], ns)

        walk(schema, None)
        return schema


# ---------------------------------------------------------------------- oracle and filters

def named_schemas(s):
    out, seen, stack = [], set(), [s]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if x.type in ("record", "enum", "fixed"):
            out.append(x)
        if x.type == "record":
            stack.extend(f.type for f in x.fields)
        elif x.type == "array":
            stack.append(x.items)
        elif x.type == "map":
            stack.append(x.values)
        elif x.type == "union":
            stack.extend(x.schemas)
    return out


def java_rejects(s):
    """Schemas Avro-Java refuses but Python accepts: a named type twice in a union."""
    stack, seen = [s], set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if x.type == "union":
            names = [b.fullname for b in x.schemas if b.type in ("record", "enum", "fixed")]
            if len(names) != len(set(names)):
                return True
            stack.extend(x.schemas)
        elif x.type == "record":
            stack.extend(f.type for f in x.fields)
        elif x.type == "array":
            stack.append(x.items)
        elif x.type == "map":
            stack.append(x.values)
    return False


def java_python_differ(reader, writer):
    """True when the Python port may answer differently from Java for this pair."""
    w_named = named_schemas(writer)
    for r in named_schemas(reader):
        raw = r.props.get("aliases") or []
        space = r.fullname.rsplit(".", 1)[0] if "." in r.fullname else None
        java = [a if "." in a or not space else f"{space}.{a}" for a in raw]
        for w in w_named:
            if w.type != r.type:
                continue
            py_match = r.name == w.name or w.fullname in raw
            java_match = r.name == w.name or w.fullname in java
            if py_match != java_match:
                return True
            if r.type == "record" and w.type == "record":
                wf = w.fields_dict
                for f in r.fields:
                    hits = (1 if f.name in wf else 0) + sum(1 for a in set(f.props.get("aliases") or []) if a in wf)
                    if hits > 1:
                        return True
    return False


def empty_namespace_inside_namespace(schema):
    """`"namespace": ""` where the enclosing namespace is not null (see above)."""
    found = False

    def walk(t, ns):
        nonlocal found
        if isinstance(t, list):
            for b in t:
                walk(b, ns)
        elif isinstance(t, dict):
            ty = t.get("type")
            if ty in ("record", "enum", "fixed"):
                if t.get("namespace") == "" and ns and "." not in t.get("name", ""):
                    found = True
                if ty == "record":
                    inner = Gen.eff_ns(t, ns)
                    for f in t.get("fields", []):
                        walk(f.get("type"), inner)
            elif ty == "array":
                walk(t.get("items"), ns)
            elif ty == "map":
                walk(t.get("values"), ns)

    walk(schema, None)
    return found


def verdict(reader, writer):
    res = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    return res.compatibility is SchemaCompatibilityType.compatible


class MemolessChecker(ReaderWriterCompatibilityChecker):
    """The oracle without its result memo (only pairs on the current path count
    as compatible). Never used for verdicts: only to find pairs whose verdict
    depends on Java's memo, so the corpus is sure to contain some."""

    def get_compatibility(self, reader, writer, reference_token="/", location=None):
        pair = ReaderWriter(reader, writer)
        if pair in self.memoize_map:
            return CompatibleResult
        self.memoize_map[pair] = SchemaCompatibilityResult()
        result = self.calculate_compatibility(reader, writer, (location or []) + [reference_token])
        del self.memoize_map[pair]
        return result


def memo_sensitive(a, b):
    try:
        r, w = avro.schema.parse(json.dumps(a)), avro.schema.parse(json.dumps(b))
        memo = ReaderWriterCompatibilityChecker().get_compatibility(r, w).compatibility
        return memo != MemolessChecker().get_compatibility(r, w).compatibility
    except Exception:
        return False


def compact(x):
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------- fixed tables

def tables():
    """Every primitive pair, primitives against unions, logical types."""
    out = []
    for r in PRIMS:
        for w in PRIMS:
            out.append((r, w, ["table_prim"]))
    for p in PRIMS:
        for q in PRIMS:
            if p != q:
                out.append((p, [p, q] if p != "null" else ["null", q], ["table_union_writer"]))
                out.append(([q, p] if q != "null" else ["null", p], p, ["table_union_reader"]))
    logicals = LOGICAL + [
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
        {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 5},
        {"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 3},
        {"type": "fixed", "name": "D", "size": 8, "logicalType": "decimal", "precision": 10, "scale": 2},
        {"type": "fixed", "name": "D", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4},
        {"type": "fixed", "name": "D", "size": 8, "logicalType": "decimal", "precision": 40, "scale": 4},
        {"type": "fixed", "name": "D", "size": 16, "logicalType": "decimal", "precision": 10, "scale": 2},
        "int", "long", "bytes", "string",
    ]
    for r in logicals:
        for w in logicals:
            out.append((r, w, ["table_logical"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=6000, help="pairs to write")
    ap.add_argument("--out", default="-")
    ap.add_argument("--no-tables", action="store_true", help="random pairs only")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    gen = Gen(rng)
    seen = set()
    stats = {"written": 0, "compatible": 0, "parse_failed": 0, "java_rejects": 0, "java_python_differ": 0,
             "duplicate": 0, "oracle_error": 0}
    why_counts = {}
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")

    def emit(rj, wj, why):
        key = (compact(rj), compact(wj))
        if key in seen:
            stats["duplicate"] += 1
            return
        seen.add(key)
        try:
            r = avro.schema.parse(key[0])
            w = avro.schema.parse(key[1])
        except Exception:
            stats["parse_failed"] += 1
            return
        if java_rejects(r) or java_rejects(w):
            stats["java_rejects"] += 1
            return
        if java_python_differ(r, w) or empty_namespace_inside_namespace(rj) or empty_namespace_inside_namespace(wj):
            stats["java_python_differ"] += 1
            return
        try:
            ok = verdict(r, w)
        except Exception:
            stats["oracle_error"] += 1
            return
        line = {"reader": rj, "writer": wj, "compatible": ok, "why": why}
        out.write(compact(line) + "\n")
        stats["written"] += 1
        stats["compatible"] += ok
        for tag in set(why):
            why_counts[tag] = why_counts.get(tag, 0) + 1

    if not args.no_tables:
        for rj, wj, why in tables():
            if stats["written"] >= args.count:
                break
            emit(rj, wj, why)

    attempts = 0
    while stats["written"] < args.count and attempts < args.count * 20:
        attempts += 1
        roll = rng.random()
        if roll < 0.12:
            a, b, why = gen.recursive_family()
            if rng.random() < 0.15:
                # Hunt for a pair whose verdict depends on the memo.
                for _ in range(400):
                    if memo_sensitive(a, b):
                        why = why + ["memo_sensitive"]
                        break
                    a, b, why = gen.recursive_family()
            emit(gen.fix_defaults(a), gen.fix_defaults(b), why)
            continue
        base = gen.fix_defaults(gen.schema())
        roll = rng.random()
        if roll < 0.07:
            other, why = gen.fix_defaults(gen.schema()), ["unrelated"]
        elif roll < 0.12:
            other, why = copy.deepcopy(base), ["identical"]
        else:
            other, why = gen.mutate(base, rng.choice([1, 1, 1, 2, 2, 3]))
            other = gen.fix_defaults(other)
            if not why:
                continue
        if rng.random() < 0.5:
            emit(other, base, ["mutant_reads"] + why)
        else:
            emit(base, other, ["mutant_writes"] + why)

    if out is not sys.stdout:
        out.close()
    stats["compatible_pct"] = round(100.0 * stats["compatible"] / max(1, stats["written"]), 1)
    print(json.dumps({"seed": args.seed, **stats, "steps": dict(sorted(why_counts.items()))}), file=sys.stderr)
    if stats["written"] < args.count:
        print(f"only {stats['written']} pairs could be generated", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
