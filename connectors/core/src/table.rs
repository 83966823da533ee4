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
