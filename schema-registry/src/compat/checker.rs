//! The reader/writer check, a transcription of Avro-Java's
//! `SchemaCompatibility.ReaderWriterCompatibilityChecker` (1.11/1.12).
//!
//! Verdicts depend on more than the Avro resolution rules: Java memoizes on
//! the identity of `(reader, writer)` schema objects and answers "compatible"
//! for a pair whose check is still in progress (that is how it terminates on
//! recursive types). A pair first met inside such a cycle keeps the verdict it
//! got there, and a reader union stops at the first branch that is
//! compatible. To give the same answers in those corners the walk below keeps
//! Java's order, its memo keys (our node ids: named types are shared nodes,
//! everything else is one node per occurrence, as Java's objects) and its
//! "fresh root location" calls for union branches.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use super::schema::{Field, Node, NodeId, Record, Schema, Type};

/// Java's `SchemaIncompatibilityType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NameMismatch => "NAME_MISMATCH",
            Kind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Kind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Kind::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Kind::TypeMismatch => "TYPE_MISMATCH",
            Kind::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

/// One incompatibility: Java's `Incompatibility` without the fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Incompatibility {
    pub kind: Kind,
    /// JSON pointer, as `Incompatibility.getLocation()`.
    pub location: String,
    /// Java's message ("expected: ...", the field name, "[A, B]", ...).
    pub message: String,
}

/// How a check ended.
#[derive(Debug)]
pub(crate) enum Verdict {
    Compatible,
    /// Never empty.
    Incompatible(Vec<Incompatibility>),
    /// Java throws here (a reader field matching several writer fields);
    /// Confluent reports "Unexpected exception during compatibility check".
    Exception(String),
    /// The walk got deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Nested pair checks allowed before giving up, to keep adversarial
/// recursive schemas from exhausting the stack. A level costs under 3 KiB of
/// stack in debug builds and under 1 KiB in release builds, so this fits a
/// 2 MiB thread stack (tokio's default). Real schemas stay far below: JSON
/// nesting is capped at 128 by serde_json and a non-recursive schema needs at
/// most two levels per JSON level (unions); recursive types repeat their
/// reader/writer pairs after a cycle or two.
pub(crate) const MAX_DEPTH: usize = 400;

/// Incompatibilities kept per result. Java concatenates lists, which can grow
/// exponentially when memoized results are reused; the verdict does not
/// depend on the list, so it is capped.
const MAX_REPORTED: usize = 100;

pub(crate) fn check(reader: &Schema, writer: &Schema) -> Verdict {
    let mut checker = Checker {
        r: reader,
        w: writer,
        memo: HashMap::new(),
        depth: 0,
        compatible: Rc::new(Outcome::default()),
    };
    match checker.fresh(reader.root, writer.root) {
        Ok(out) if !out.incompatible => Verdict::Compatible,
        Ok(out) => Verdict::Incompatible(out.items.clone()),
        Err(Abort::Exception(msg)) => Verdict::Exception(msg),
        Err(Abort::TooDeep) => Verdict::TooDeep,
    }
}

#[derive(Default, Debug)]
struct Outcome {
    incompatible: bool,
    items: Vec<Incompatibility>,
}

impl Outcome {
    /// Java's `mergedWith`.
    fn merge(&mut self, other: &Outcome) {
        self.incompatible |= other.incompatible;
        let room = MAX_REPORTED.saturating_sub(self.items.len());
        self.items.extend(other.items.iter().take(room).cloned());
    }

    fn add(&mut self, kind: Kind, message: String, loc: &[String]) {
        self.incompatible = true;
        if self.items.len() < MAX_REPORTED {
            self.items.push(Incompatibility {
                kind,
                location: pointer(loc),
                message,
            });
        }
    }
}

enum Abort {
    Exception(String),
    TooDeep,
}

type Res = Result<Rc<Outcome>, Abort>;

/// `Incompatibility.getLocation()`: the root token is skipped.
fn pointer(loc: &[String]) -> String {
    let parts: Vec<String> = loc
        .iter()
        .skip(1)
        .map(|c| c.replace('~', "~0").replace('/', "~1"))
        .collect();
    format!("/{}", parts.join("/"))
}

struct Checker<'a> {
    r: &'a Schema,
    w: &'a Schema,
    /// `None`: in progress.
    memo: HashMap<(NodeId, NodeId), Option<Rc<Outcome>>>,
    depth: usize,
    compatible: Rc<Outcome>,
}

impl Checker<'_> {
    // The recursion goes get -> calc -> (fields | union loops) -> get; those
    // functions keep few locals, and everything else (names, sizes, symbols,
    // messages) lives in separate non-inlined functions, so that a level of
    // nesting costs little stack even in debug builds.

    /// The public two-argument `getCompatibility`: a fresh location stack.
    fn fresh(&mut self, r: NodeId, w: NodeId) -> Res {
        let mut loc = Vec::new();
        self.get("", r, w, &mut loc)
    }

    /// The memoizing `getCompatibility(token, reader, writer, location)`.
    fn get(&mut self, token: &str, r: NodeId, w: NodeId, loc: &mut Vec<String>) -> Res {
        match self.memo.get(&(r, w)) {
            Some(Some(done)) => Ok(done.clone()),
            // Recursion: compatible unless proven otherwise.
            Some(None) => Ok(self.compatible.clone()),
            None => {
                if self.depth >= MAX_DEPTH {
                    return Err(Abort::TooDeep);
                }
                self.memo.insert((r, w), None);
                self.depth += 1;
                loc.push(token.to_string());
                let out = self.calc(r, w, loc);
                loc.pop();
                self.depth -= 1;
                let out = Rc::new(out?);
                self.memo.insert((r, w), Some(out.clone()));
                Ok(out)
            }
        }
    }

    /// `calculateCompatibility`.
    fn calc(&mut self, r: NodeId, w: NodeId, loc: &mut Vec<String>) -> Result<Outcome, Abort> {
        let (rs, ws) = (self.r, self.w);
        let (rn, wn) = (rs.node(r), ws.node(w));
        let mut out = Outcome::default();
        if rn.ty() == wn.ty() {
            match (rn, wn) {
                (Node::Array(ri), Node::Array(wi)) => {
                    let sub = self.get("items", *ri, *wi, loc)?;
                    out.merge(&sub);
                }
                (Node::Map(rv), Node::Map(wv)) => {
                    let sub = self.get("values", *rv, *wv, loc)?;
                    out.merge(&sub);
                }
                (Node::Record(rr), Node::Record(wr)) => {
                    check_names(rn, wn, loc, &mut out);
                    self.check_fields(rr, wr, w, loc, &mut out)?;
                }
                (Node::Union(_), Node::Union(wb)) => {
                    // Every writer branch must be readable by the reader union.
                    for (i, &branch) in wb.iter().enumerate() {
                        loc.push(i.to_string());
                        if self.fresh(r, branch)?.incompatible {
                            missing_union_branch(ws.node(branch), loc, &mut out);
                        }
                        loc.pop();
                    }
                }
                // Primitives, enums and fixed: no recursion.
                _ => same_type_leaf(rn, wn, loc, &mut out),
            }
            return Ok(out);
        }
        match (rn, wn) {
            // A writer union: the reader must read every branch.
            (_, Node::Union(wb)) => {
                for &branch in wb {
                    let sub = self.fresh(r, branch)?;
                    out.merge(&sub);
                }
            }
            // A reader union: the first branch that reads the writer wins.
            (Node::Union(rb), _) => {
                for &branch in rb {
                    if !self.fresh(branch, w)?.incompatible {
                        return Ok(out);
                    }
                }
                missing_union_branch(wn, loc, &mut out);
            }
            _ => different_types_leaf(rn, wn, loc, &mut out),
        }
        Ok(out)
    }

    /// `checkReaderWriterRecordFields`.
    fn check_fields(
        &mut self,
        rr: &Record,
        wr: &Record,
        w: NodeId,
        loc: &mut Vec<String>,
        out: &mut Outcome,
    ) -> Result<(), Abort> {
        loc.push("fields".into());
        for (pos, rf) in rr.fields.iter().enumerate() {
            loc.push(pos.to_string());
            let sub = match lookup_writer_field(wr, rf, pos, self.r)? {
                Some(wf) => Some(self.get("type", rf.schema, wr.fields[wf].schema, loc)?),
                None if rf.has_default => None,
                // Java compares a reader enum that has a default with the
                // writer *record* here, which is always a type mismatch.
                None if has_enum_default(self.r.node(rf.schema)) => {
                    Some(self.get("type", rf.schema, w, loc)?)
                }
                None => {
                    missing_default(rf, loc, out);
                    None
                }
            };
            if let Some(sub) = sub {
                out.merge(&sub);
            }
            loc.pop();
        }
        loc.pop();
        Ok(())
    }
}

fn has_enum_default(node: &Node) -> bool {
    matches!(node, Node::Enum(e) if e.default.is_some())
}

/// Same type, no recursion: primitives, fixed, enums.
#[inline(never)]
fn same_type_leaf(rn: &Node, wn: &Node, loc: &mut Vec<String>, out: &mut Outcome) {
    match (rn, wn) {
        (Node::Fixed(rf), Node::Fixed(wf)) => {
            check_names(rn, wn, loc, out);
            // `checkFixedSize`.
            if rf.size != wf.size {
                loc.push("size".into());
                let msg = format!("expected: {}, found: {}", wf.size, rf.size);
                out.add(Kind::FixedSizeMismatch, msg, loc);
                loc.pop();
            }
        }
        (Node::Enum(re), Node::Enum(we)) => {
            check_names(rn, wn, loc, out);
            // `checkReaderEnumContainsAllWriterEnumSymbols`.
            let missing: BTreeSet<&str> = we
                .symbols
                .iter()
                .filter(|s| !re.symbols.contains(s))
                .map(String::as_str)
                .collect();
            let has_default = re.default.as_ref().is_some_and(|d| re.symbols.contains(d));
            if !missing.is_empty() && !has_default {
                loc.push("symbols".into());
                let list: Vec<&str> = missing.into_iter().collect();
                out.add(
                    Kind::MissingEnumSymbols,
                    format!("[{}]", list.join(", ")),
                    loc,
                );
                loc.pop();
            }
        }
        // Equal primitives are compatible.
        _ => {}
    }
}

/// Different types, neither a union: promotions or a type mismatch.
#[inline(never)]
fn different_types_leaf(rn: &Node, wn: &Node, loc: &[String], out: &mut Outcome) {
    let (rt, wt) = (rn.ty(), wn.ty());
    let promotable = match rt {
        Type::Long => wt == Type::Int,
        Type::Float => matches!(wt, Type::Int | Type::Long),
        Type::Double => matches!(wt, Type::Int | Type::Long | Type::Float),
        Type::Bytes => wt == Type::String,
        Type::String => wt == Type::Bytes,
        _ => false,
    };
    if !promotable {
        let msg = format!("reader type: {rt} not compatible with writer type: {wt}");
        out.add(Kind::TypeMismatch, msg, loc);
    }
}

#[inline(never)]
fn missing_union_branch(writer: &Node, loc: &[String], out: &mut Outcome) {
    let msg = format!("reader union lacking writer type: {}", writer.ty());
    out.add(Kind::MissingUnionBranch, msg, loc);
}

#[inline(never)]
fn missing_default(rf: &Field, loc: &[String], out: &mut Outcome) {
    out.add(Kind::ReaderFieldMissingDefaultValue, rf.name.clone(), loc);
}

/// `checkSchemaNames`: simple names equal, or a reader alias is the writer's
/// full name.
#[inline(never)]
fn check_names(rn: &Node, wn: &Node, loc: &mut Vec<String>, out: &mut Outcome) {
    let (Some(r), Some(w)) = (rn.named(), wn.named()) else {
        return;
    };
    let writer_full = w.name.full();
    if r.name.name != w.name.name && !r.aliases.contains(&writer_full) {
        loc.push("name".into());
        out.add(Kind::NameMismatch, format!("expected: {writer_full}"), loc);
        loc.pop();
    }
}

/// `lookupWriterField`: by name and by each reader alias; more than one hit
/// (even the same writer field twice) makes Java throw.
fn lookup_writer_field(
    wr: &Record,
    rf: &Field,
    pos: usize,
    reader: &Schema,
) -> Result<Option<usize>, Abort> {
    let mut hits = Vec::new();
    hits.extend(wr.by_name.get(&rf.name).copied());
    for alias in &rf.aliases {
        hits.extend(wr.by_name.get(alias).copied());
    }
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Abort::Exception(format!(
            "Reader record field {} type:{} pos:{} matches multiple fields in writer record schema {}",
            rf.name,
            reader.node(rf.schema).ty(),
            pos,
            wr.named.name.full()
        ))),
    }
}
