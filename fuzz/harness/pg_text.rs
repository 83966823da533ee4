//! Shared by the `pg_text` fuzz target and connectors/postgres/tests/fuzz_corpus.rs.
//!
//! Input: a selector byte, a flags byte (bit 0: nullable), then the value's text.
//! Selectors below `types().len()` parse the text as that column type with
//! `text::parse_typed` (and `parse_column`'s UTF-8 check via `parse_text`); the others
//! call one of the text/ sub-parsers directly.

use sluice_core::{TypeInfo, TypeKind};
use sluice_postgres::text::{self, array, composite, hstore, oid, range, Notes};

fn ty(o: u32) -> TypeInfo {
    TypeInfo::base(o, -1, "")
}

fn arr(element: TypeInfo, dims: u32, delimiter: u8) -> TypeInfo {
    TypeInfo {
        oid: 1,
        name: "_x".into(),
        schema: String::new(),
        modifier: -1,
        kind: TypeKind::Array {
            element: Box::new(element),
            dims,
            delimiter,
        },
    }
}

fn with_kind(o: u32, name: &str, kind: TypeKind) -> TypeInfo {
    TypeInfo {
        oid: o,
        name: name.into(),
        schema: "public".into(),
        modifier: -1,
        kind,
    }
}

/// The column types the fuzzer picks from.
pub fn types() -> Vec<TypeInfo> {
    let mut v: Vec<TypeInfo> = [
        oid::BOOL,
        oid::INT2,
        oid::INT4,
        oid::INT8,
        oid::OID,
        oid::FLOAT4,
        oid::FLOAT8,
        oid::NUMERIC,
        oid::BYTEA,
        oid::JSON,
        oid::JSONB,
        oid::UUID,
        oid::DATE,
        oid::TIME,
        oid::TIMETZ,
        oid::TIMESTAMP,
        oid::TIMESTAMPTZ,
        oid::INTERVAL,
        oid::BIT,
        oid::VARBIT,
        oid::POINT,
        oid::MONEY,
        oid::XML,
        oid::TEXT,
        oid::BOX,
        oid::INET,
    ]
    .into_iter()
    .map(ty)
    .collect();
    let comp = with_kind(
        90000,
        "pair",
        TypeKind::Composite {
            fields: vec![
                ("a".into(), ty(oid::INT4)),
                ("b".into(), ty(oid::TEXT)),
                ("c".into(), arr(ty(oid::TEXT), 1, b',')),
                ("d".into(), ty(oid::NUMERIC)),
                ("e".into(), ty(oid::TIMESTAMPTZ)),
            ],
        },
    );
    let nested = with_kind(
        90005,
        "outer",
        TypeKind::Composite {
            fields: vec![
                ("p".into(), comp.clone()),
                ("q".into(), arr(comp.clone(), 2, b',')),
                ("r".into(), ty(oid::INTERVAL)),
            ],
        },
    );
    let range = with_kind(
        oid::INT4RANGE,
        "int4range",
        TypeKind::Range {
            subtype: Box::new(ty(oid::INT4)),
        },
    );
    v.extend([
        arr(ty(oid::TEXT), 1, b','),
        arr(ty(oid::INT4), 1, b','),
        arr(ty(oid::INT4), 3, b','),
        arr(ty(oid::DATE), 2, b','),
        arr(ty(oid::BOX), 1, b';'),
        arr(ty(oid::NUMERIC), 1, b','),
        comp.clone(),
        nested.clone(),
        arr(comp, 1, b','),
        arr(nested, 1, b','),
        with_kind(
            90001,
            "posint",
            TypeKind::Domain {
                base: Box::new(ty(oid::INT4)),
            },
        ),
        with_kind(
            90002,
            "mood",
            TypeKind::Enum {
                labels: vec!["sad".into(), "ok".into()],
            },
        ),
        with_kind(oid::MONEY, "money", TypeKind::Money { fraction_digits: 0 }),
        with_kind(oid::MONEY, "money", TypeKind::Money { fraction_digits: 3 }),
        TypeInfo::base(90003, -1, "hstore"),
        arr(TypeInfo::base(90003, -1, "hstore"), 1, b','),
        TypeInfo::base(90004, -1, "ltree"),
        range.clone(),
        with_kind(
            oid::INT4MULTIRANGE,
            "int4multirange",
            TypeKind::Multirange {
                range: Box::new(range.clone()),
            },
        ),
        arr(range, 1, b','),
    ]);
    v
}

/// Number of direct sub-parser selectors after the types.
const DIRECT: usize = 9;

pub fn run_with(types: &[TypeInfo], data: &[u8]) {
    let [sel, flags, rest @ ..] = data else {
        return;
    };
    let sel = *sel as usize % (types.len() + DIRECT);
    let nullable = flags & 1 == 1;
    if let Some(t) = types.get(sel) {
        if t.kind == TypeKind::Base {
            let _ = text::parse_text(t.oid, rest);
        }
        let Ok(s) = std::str::from_utf8(rest) else {
            return;
        };
        let mut notes = Notes::default();
        match text::parse_typed(t, s, nullable, &mut notes, 0) {
            Ok(v) => {
                let _ = format!("{v:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        return;
    }
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match sel - types.len() {
        0 => {
            if let Ok(items) = array::parse(s, if nullable { b';' } else { b',' }) {
                let _ = array::ndims(&items);
                let mut flat = Vec::new();
                array::flatten(items, &mut flat);
            }
        }
        1 => {
            let _ = composite::parse(s, (flags >> 1) as usize);
        }
        2 => {
            let _ = hstore::parse(s);
        }
        3 => {
            let _ = hstore::to_json(s);
        }
        4 => {
            let _ = range::parse(s);
        }
        5 => {
            let _ = range::parse_multi(s);
        }
        6 => {
            let _ = text::parse_interval(s);
        }
        7 => {
            let _ = text::parse_money(s, u32::from(flags >> 1) % 8);
        }
        _ => {
            let mut out = String::new();
            hstore::json_string(&mut out, s);
        }
    }
}
