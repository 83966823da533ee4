//! Avro schema JSON → the graph the checker walks.
//!
//! Parsing follows Avro-Java's `Schema.Parser` where it matters for
//! compatibility verdicts:
//!
//! - every schema node is its own node, except that a reference by name to a
//!   named type (record, enum, fixed) is the *same* node as its definition, so
//!   the checker's memo on `(reader node, writer node)` sees exactly the pairs
//!   Java's identity-keyed memo sees, and recursive types are finite graphs;
//! - names: a `name` with a dot is a full name; otherwise the `namespace`
//!   attribute, else the namespace of the enclosing named type, applies; `""`
//!   is the null namespace. A reference is looked up in the enclosing
//!   namespace first and then as written (Java's fallback to the null
//!   namespace); primitive type names always win;
//! - aliases of named types are resolved against the type's own namespace
//!   (Java's `getAliases()`), field aliases are kept as written, as a set;
//! - a field has a default when the `default` key is present, even `null`;
//! - logical types are annotations only: Java ignores them for resolution, so
//!   they are not even recorded (an invalid one is ignored, as in Java).
//!
//! What Java rejects at parse time and is cheap to detect is rejected here too
//! (unknown names, redefinitions, nested or duplicate union branches, duplicate
//! fields or symbols, invalid names, enum defaults outside the symbols, fixed
//! sizes that are not non-negative 32-bit integers). Default *values* are not
//! validated: the checker only needs to know whether there is one.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

pub(crate) type NodeId = usize;

/// Avro-Java's `Schema.Type`; `Display` is its `toString()` (e.g. `INT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array,
    Map,
    Union,
    Record,
    Enum,
    Fixed,
}

impl Type {
    fn primitive(name: &str) -> Option<Type> {
        Some(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "int" => Type::Int,
            "long" => Type::Long,
            "float" => Type::Float,
            "double" => Type::Double,
            "bytes" => Type::Bytes,
            "string" => Type::String,
            _ => return None,
        })
    }

    fn lower(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Boolean => "boolean",
            Type::Int => "int",
            Type::Long => "long",
            Type::Float => "float",
            Type::Double => "double",
            Type::Bytes => "bytes",
            Type::String => "string",
            Type::Array => "array",
            Type::Map => "map",
            Type::Union => "union",
            Type::Record => "record",
            Type::Enum => "enum",
            Type::Fixed => "fixed",
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lower().to_ascii_uppercase())
    }
}

/// A resolved Avro name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    /// The simple (unqualified) name.
    pub name: String,
    /// The namespace; `None` is the null namespace.
    pub space: Option<String>,
}

impl Name {
    /// Java's `new Schema.Name(name, space)`: a dotted name carries its own
    /// namespace, `""` means the null namespace.
    fn new(name: &str, space: Option<&str>) -> Result<Name, String> {
        let (space, simple) = match name.rfind('.') {
            Some(dot) => (Some(&name[..dot]), &name[dot + 1..]),
            None => (space, name),
        };
        validate_name(simple)?;
        Ok(Name {
            name: simple.to_string(),
            space: space.filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    pub fn full(&self) -> String {
        match &self.space {
            Some(space) => format!("{space}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: String,
    /// As written, without duplicates (Java keeps them in a set).
    pub aliases: Vec<String>,
    pub schema: NodeId,
    pub has_default: bool,
}

#[derive(Debug)]
pub(crate) struct Named {
    pub name: Name,
    /// Full names (resolved against the type's namespace).
    pub aliases: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Record {
    pub named: Named,
    pub fields: Vec<Field>,
    pub by_name: HashMap<String, usize>,
}

#[derive(Debug)]
pub(crate) struct Enum {
    pub named: Named,
    pub symbols: Vec<String>,
    pub default: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Fixed {
    pub named: Named,
    pub size: u32,
}

#[derive(Debug)]
pub(crate) enum Node {
    Primitive(Type),
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
    Record(Record),
    Enum(Enum),
    Fixed(Fixed),
}

impl Node {
    pub fn ty(&self) -> Type {
        match self {
            Node::Primitive(t) => *t,
            Node::Array(_) => Type::Array,
            Node::Map(_) => Type::Map,
            Node::Union(_) => Type::Union,
            Node::Record(_) => Type::Record,
            Node::Enum(_) => Type::Enum,
            Node::Fixed(_) => Type::Fixed,
        }
    }

    pub fn named(&self) -> Option<&Named> {
        match self {
            Node::Record(r) => Some(&r.named),
            Node::Enum(e) => Some(&e.named),
            Node::Fixed(f) => Some(&f.named),
            _ => None,
        }
    }
}

/// A parsed schema: an arena of nodes and the root.
#[derive(Debug)]
pub(crate) struct Schema {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

impl Schema {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Parse an already decoded JSON value.
    pub fn from_value(value: &Value) -> Result<Schema, String> {
        let mut parser = Parser::default();
        let root = parser.parse(value)?;
        Ok(Schema {
            nodes: parser.nodes,
            root,
        })
    }
}

/// Java's `Schema.validateName`: a letter or `_`, then letters, digits or `_`.
fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("empty name".into()),
        Some(c) if c.is_alphabetic() || c == '_' => {}
        Some(_) => return Err(format!("illegal initial character in name {name:?}")),
    }
    if chars.all(|c| c.is_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("illegal character in name {name:?}"))
    }
}

/// Compact rendering of a JSON fragment for error messages.
fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(117).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[derive(Default)]
struct Parser {
    nodes: Vec<Node>,
    names: HashMap<String, NodeId>,
    /// Namespace of the enclosing named type.
    space: Option<String>,
}

impl Parser {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn parse(&mut self, value: &Value) -> Result<NodeId, String> {
        match value {
            Value::String(name) => self.reference(name),
            Value::Array(branches) => self.union(branches),
            Value::Object(obj) => self.object(obj),
            other => Err(format!("not a schema: {}", show(other))),
        }
    }

    /// A type given by name: primitive, or a named type defined earlier.
    fn reference(&mut self, name: &str) -> Result<NodeId, String> {
        if let Some(t) = Type::primitive(name) {
            return Ok(self.push(Node::Primitive(t)));
        }
        let qualified = match (&self.space, name.contains('.')) {
            (Some(space), false) => format!("{space}.{name}"),
            _ => name.to_string(),
        };
        self.names
            .get(&qualified)
            .or_else(|| self.names.get(name))
            .copied()
            .ok_or_else(|| format!("{name:?} is not a defined name (named types must be defined before they are referenced)"))
    }

    fn union(&mut self, branches: &[Value]) -> Result<NodeId, String> {
        let mut ids = Vec::with_capacity(branches.len());
        let mut seen = HashSet::new();
        for branch in branches {
            let id = self.parse(branch)?;
            let node = &self.nodes[id];
            let key = match node {
                Node::Union(_) => return Err(format!("nested union: {}", show(branch))),
                n => n
                    .named()
                    .map(|named| named.name.full())
                    .unwrap_or_else(|| n.ty().lower().to_string()),
            };
            if !seen.insert(key.clone()) {
                return Err(format!("duplicate in union: {key}"));
            }
            ids.push(id);
        }
        Ok(self.push(Node::Union(ids)))
    }

    fn object(&mut self, obj: &Map<String, Value>) -> Result<NodeId, String> {
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                return Err(format!(
                    "\"type\" must be a type name, found {}",
                    show(other)
                ))
            }
            None => {
                return Err(format!(
                    "no \"type\" in {}",
                    show(&Value::Object(obj.clone()))
                ))
            }
        };
        if let Some(t) = Type::primitive(ty) {
            return Ok(self.push(Node::Primitive(t)));
        }
        match ty {
            "record" | "error" => self.record(obj),
            "enum" => self.enumeration(obj),
            "fixed" => self.fixed(obj),
            "array" => {
                let items = obj.get("items").ok_or("array has no \"items\"")?;
                let items = self.parse(items)?;
                Ok(self.push(Node::Array(items)))
            }
            "map" => {
                let values = obj.get("values").ok_or("map has no \"values\"")?;
                let values = self.parse(values)?;
                Ok(self.push(Node::Map(values)))
            }
            other => self.reference(other),
        }
    }

    /// Name and aliases of a named type.
    fn named(&self, obj: &Map<String, Value>, kind: &str) -> Result<Named, String> {
        let name = match obj.get("name") {
            Some(Value::String(n)) => n,
            _ => return Err(format!("{kind} has no \"name\" string")),
        };
        let space = match obj.get("namespace") {
            None | Some(Value::Null) => self.space.as_deref(),
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(format!(
                    "\"namespace\" must be a string, found {}",
                    show(other)
                ))
            }
        };
        let name = Name::new(name, space)?;
        let aliases = aliases(obj)?
            .iter()
            .map(|alias| Name::new(alias, name.space.as_deref()).map(|n| n.full()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Named { name, aliases })
    }

    fn define_node(&mut self, id: NodeId) -> Result<(), String> {
        let Some(named) = self.nodes[id].named() else {
            return Ok(());
        };
        let full = named.name.full();
        if Type::primitive(&full).is_some() {
            return Err(format!("a named type may not be called {full:?}"));
        }
        if self.names.insert(full.clone(), id).is_some() {
            return Err(format!("can't redefine: {full}"));
        }
        Ok(())
    }

    fn record(&mut self, obj: &Map<String, Value>) -> Result<NodeId, String> {
        let named = self.named(obj, "record")?;
        let fields_json = match obj.get("fields") {
            Some(Value::Array(fields)) => fields,
            _ => {
                return Err(format!(
                    "record {} has no \"fields\" array",
                    named.name.full()
                ))
            }
        };
        let space = named.name.space.clone();
        let id = self.push(Node::Record(Record {
            named,
            fields: Vec::new(),
            by_name: HashMap::new(),
        }));
        // Defined before the fields are parsed, so fields can refer to it.
        self.define_node(id)?;
        let saved = std::mem::replace(&mut self.space, space);
        let mut fields = Vec::with_capacity(fields_json.len());
        let mut by_name = HashMap::with_capacity(fields_json.len());
        for field in fields_json {
            let field = self.field(field)?;
            if by_name.insert(field.name.clone(), fields.len()).is_some() {
                return Err(format!("duplicate field {:?}", field.name));
            }
            fields.push(field);
        }
        self.space = saved;
        if let Node::Record(r) = &mut self.nodes[id] {
            r.fields = fields;
            r.by_name = by_name;
        }
        Ok(id)
    }

    fn field(&mut self, value: &Value) -> Result<Field, String> {
        let Value::Object(obj) = value else {
            return Err(format!("not a field: {}", show(value)));
        };
        let name = match obj.get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => return Err(format!("field has no \"name\" string: {}", show(value))),
        };
        validate_name(&name)?;
        let ty = obj
            .get("type")
            .ok_or_else(|| format!("field {name:?} has no \"type\""))?;
        let schema = self.parse(ty)?;
        if let Some(order) = obj.get("order") {
            let ok = order.as_str().is_some_and(|o| {
                ["ascending", "descending", "ignore"]
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(o))
            });
            if !ok {
                return Err(format!(
                    "field {name:?} has an invalid \"order\": {}",
                    show(order)
                ));
            }
        }
        let mut field_aliases: Vec<String> = Vec::new();
        for alias in aliases(obj)? {
            if !field_aliases.contains(&alias) {
                field_aliases.push(alias);
            }
        }
        Ok(Field {
            name,
            aliases: field_aliases,
            schema,
            has_default: obj.contains_key("default"),
        })
    }

    fn enumeration(&mut self, obj: &Map<String, Value>) -> Result<NodeId, String> {
        let named = self.named(obj, "enum")?;
        let Some(Value::Array(symbols_json)) = obj.get("symbols") else {
            return Err(format!(
                "enum {} has no \"symbols\" array",
                named.name.full()
            ));
        };
        let mut symbols = Vec::with_capacity(symbols_json.len());
        let mut seen = HashSet::new();
        for symbol in symbols_json {
            let Value::String(symbol) = symbol else {
                return Err(format!("enum symbol is not a string: {}", show(symbol)));
            };
            validate_name(symbol)?;
            if !seen.insert(symbol.as_str()) {
                return Err(format!("duplicate enum symbol {symbol:?}"));
            }
            symbols.push(symbol.clone());
        }
        let default = match obj.get("default") {
            None => None,
            Some(Value::String(d)) if seen.contains(d.as_str()) => Some(d.clone()),
            Some(other) => {
                return Err(format!(
                    "enum default {} is not one of the symbols of {}",
                    show(other),
                    named.name.full()
                ))
            }
        };
        let id = self.push(Node::Enum(Enum {
            named,
            symbols,
            default,
        }));
        self.define_node(id)?;
        Ok(id)
    }

    fn fixed(&mut self, obj: &Map<String, Value>) -> Result<NodeId, String> {
        let named = self.named(obj, "fixed")?;
        let size = obj
            .get("size")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .filter(|&s| s <= i32::MAX as u32)
            .ok_or_else(|| {
                format!(
                    "fixed {} needs a \"size\" that is a non-negative 32-bit integer",
                    named.name.full()
                )
            })?;
        let id = self.push(Node::Fixed(Fixed { named, size }));
        self.define_node(id)?;
        Ok(id)
    }
}

/// The `aliases` attribute: absent, or an array of strings.
fn aliases(obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    match obj.get("aliases") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("alias is not a string: {}", show(other))),
            })
            .collect(),
        Some(other) => Err(format!(
            "\"aliases\" must be an array, found {}",
            show(other)
        )),
    }
}
