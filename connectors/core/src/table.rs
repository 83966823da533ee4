//! Table shapes as the source describes them.

use std::fmt;

/// The source's identifier of a table (PostgreSQL: the relation OID).
pub type TableId = u32;

/// A schema-qualified table name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses `schema.table`, or `table` (schema `public`).
    pub fn parse(s: &str) -> Option<Self> {
        let (schema, name) = match s.split_once('.') {
            Some((schema, name)) => (schema, name),
            None => ("public", s),
        };
        if schema.is_empty() || name.is_empty() || name.contains('.') {
            return None;
        }
        Some(TableName::new(schema, name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// PostgreSQL type OID.
    pub type_oid: u32,
    /// Type modifier (atttypmod), -1 when none.
    pub type_modifier: i32,
    /// The type's name as the catalog spells it (e.g. `int4`, `varchar`).
    pub type_name: String,
    /// False for NOT NULL columns.
    pub nullable: bool,
    /// Part of the key (primary key or replica identity).
    pub key: bool,
    /// The column's type as the catalog describes it (element, base, labels, fields...).
    /// [`TypeInfo::base`] when only the OID is known.
    pub pg_type: TypeInfo,
    /// A constant column default in PostgreSQL's text form (`0`, `abc`, `true`); `None`
    /// for no default or a non-constant one (`now()`, sequences).
    pub default_text: Option<String>,
}

impl Column {
    /// A column whose type is described by its OID, modifier and name only.
    pub fn new(
        name: impl Into<String>,
        type_oid: u32,
        type_modifier: i32,
        type_name: impl Into<String>,
        nullable: bool,
        key: bool,
    ) -> Column {
        let type_name = type_name.into();
        Column {
            name: name.into(),
            type_oid,
            type_modifier,
            pg_type: TypeInfo::base(type_oid, type_modifier, type_name.clone()),
            default_text: None,
            type_name,
            nullable,
            key,
        }
    }
}

/// A PostgreSQL type as the catalog describes it, with everything a value of it needs to
/// be read and mapped: for arrays the element type, for domains the base type, for enums
/// the labels, for composites the fields, for ranges the subtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub oid: u32,
    /// `pg_type.typname` (e.g. `int4`, `_int4`, `mood`).
    pub name: String,
    /// The type's schema (`pg_catalog` for built-in types); empty when unknown.
    pub schema: String,
    /// The modifier that applies to this type where it is used (atttypmod, a domain's
    /// typtypmod, an array column's modifier for its elements); -1 when none.
    pub modifier: i32,
    pub kind: TypeKind,
}

/// What kind of type a [`TypeInfo`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// A scalar type, mapped by OID (built-in) or by name (extension types like hstore).
    Base,
    /// `money`: `fraction_digits` is what the server's lc_monetary prints.
    Money {
        fraction_digits: u32,
    },
    /// An array of `element`; `dims` the declared number of dimensions (at least 1);
    /// `delimiter` the element type's typdelim (`,`, or `;` for box).
    Array {
        element: Box<TypeInfo>,
        dims: u32,
        delimiter: u8,
    },
    Enum {
        labels: Vec<String>,
    },
    /// A domain, read and mapped as its base type (with the domain's own typmod).
    Domain {
        base: Box<TypeInfo>,
    },
    /// A composite (row) type: its live attributes in order.
    Composite {
        fields: Vec<(String, TypeInfo)>,
    },
    Range {
        subtype: Box<TypeInfo>,
    },
    Multirange {
        range: Box<TypeInfo>,
    },
}

impl TypeInfo {
    /// A type known only by OID, modifier and name.
    pub fn base(oid: u32, modifier: i32, name: impl Into<String>) -> TypeInfo {
        TypeInfo {
            oid,
            name: name.into(),
            schema: String::new(),
            modifier,
            kind: if oid == oid::MONEY {
                TypeKind::Money { fraction_digits: 2 }
            } else {
                TypeKind::Base
            },
        }
    }

    /// Follows domains down to the type values are actually made of.
    pub fn resolved(&self) -> &TypeInfo {
        let mut t = self;
        // Bounded: domains over domains are finite, but be defensive.
        for _ in 0..32 {
            match &t.kind {
                TypeKind::Domain { base } => t = base,
                _ => break,
            }
        }
        t
    }

    /// `schema.name` when the schema is known.
    pub fn qualified_name(&self) -> String {
        if self.schema.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }
}

/// OIDs of PostgreSQL's built-in types (stable across versions: pg_type.dat).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT2VECTOR: u32 = 22;
    pub const INT4: u32 = 23;
    pub const REGPROC: u32 = 24;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const TID: u32 = 27;
    pub const XID: u32 = 28;
    pub const CID: u32 = 29;
    pub const OIDVECTOR: u32 = 30;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const POINT: u32 = 600;
    pub const LSEG: u32 = 601;
    pub const PATH: u32 = 602;
    pub const BOX: u32 = 603;
    pub const POLYGON: u32 = 604;
    pub const LINE: u32 = 628;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const CIRCLE: u32 = 718;
    pub const MACADDR8: u32 = 774;
    pub const MONEY: u32 = 790;
    pub const MACADDR: u32 = 829;
    pub const INET: u32 = 869;
    pub const ACLITEM: u32 = 1033;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const REFCURSOR: u32 = 1790;
    pub const REGPROCEDURE: u32 = 2202;
    pub const REGOPER: u32 = 2203;
    pub const REGOPERATOR: u32 = 2204;
    pub const REGCLASS: u32 = 2205;
    pub const REGTYPE: u32 = 2206;
    pub const UUID: u32 = 2950;
    pub const TXID_SNAPSHOT: u32 = 2970;
    pub const PG_LSN: u32 = 3220;
    pub const TSVECTOR: u32 = 3614;
    pub const TSQUERY: u32 = 3615;
    pub const REGCONFIG: u32 = 3734;
    pub const REGDICTIONARY: u32 = 3769;
    pub const JSONB: u32 = 3802;
    pub const INT4RANGE: u32 = 3904;
    pub const NUMRANGE: u32 = 3906;
    pub const TSRANGE: u32 = 3908;
    pub const TSTZRANGE: u32 = 3910;
    pub const DATERANGE: u32 = 3912;
    pub const INT8RANGE: u32 = 3926;
    pub const REGNAMESPACE: u32 = 4089;
    pub const REGROLE: u32 = 4096;
    pub const JSONPATH: u32 = 4072;
    pub const INT4MULTIRANGE: u32 = 4451;
    pub const NUMMULTIRANGE: u32 = 4532;
    pub const TSMULTIRANGE: u32 = 4533;
    pub const TSTZMULTIRANGE: u32 = 4534;
    pub const DATEMULTIRANGE: u32 = 4535;
    pub const INT8MULTIRANGE: u32 = 4536;
    pub const PG_SNAPSHOT: u32 = 5038;
    /// OIDs from here on are user-defined (extensions, CREATE TYPE).
    pub const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

    /// Built-in types whose text form is their faithful representation (mapped to a
    /// plain string, not counted as a fallback).
    pub fn is_textual(oid: u32) -> bool {
        matches!(
            oid,
            CHAR | NAME
                | TEXT
                | BPCHAR
                | VARCHAR
                | INET
                | CIDR
                | MACADDR
                | MACADDR8
                | TSVECTOR
                | TSQUERY
                | LSEG
                | PATH
                | BOX
                | POLYGON
                | LINE
                | CIRCLE
                | INT4RANGE
                | NUMRANGE
                | TSRANGE
                | TSTZRANGE
                | DATERANGE
                | INT8RANGE
                | INT4MULTIRANGE
                | NUMMULTIRANGE
                | TSMULTIRANGE
                | TSTZMULTIRANGE
                | DATEMULTIRANGE
                | INT8MULTIRANGE
                | INT2VECTOR
                | OIDVECTOR
                | REGPROC
                | REGPROCEDURE
                | REGOPER
                | REGOPERATOR
                | REGCLASS
                | REGTYPE
                | REGCONFIG
                | REGDICTIONARY
                | REGNAMESPACE
                | REGROLE
                | TID
                | XID
                | CID
                | ACLITEM
                | REFCURSOR
                | PG_LSN
                | TXID_SNAPSHOT
                | PG_SNAPSHOT
                | JSONPATH
        )
    }
}

/// The shape of a table at one point in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub id: TableId,
    pub name: TableName,
    pub columns: Vec<Column>,
    /// Replica identity setting: 'd' default, 'n' nothing, 'f' full, 'i' index.
    pub replica_identity: char,
}

impl Table {
    /// Indices of the key columns, in column order.
    pub fn key_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| i)
    }

    pub fn has_key(&self) -> bool {
        self.columns.iter().any(|c| c.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table_names() {
        assert_eq!(
            TableName::parse("public.orders"),
            Some(TableName::new("public", "orders"))
        );
        assert_eq!(
            TableName::parse("orders"),
            Some(TableName::new("public", "orders"))
        );
        for bad in ["", ".", "a.", ".b", "a.b.c"] {
            assert_eq!(TableName::parse(bad), None, "{bad:?}");
        }
    }
}
