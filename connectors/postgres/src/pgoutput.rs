//! Decoder of the pgoutput logical replication protocol (versions 1 to 4).
//!
//! Bytes come from the server, so nothing here panics: every malformed, truncated or
//! unknown input is a [`DecodeError`] naming the message and the byte offset.

use bytes::Bytes;
use sluice_core::Lsn;

/// Why a pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput {message} message at byte {offset}: {reason}")]
pub struct DecodeError {
    pub message: &'static str,
    pub offset: usize,
    pub reason: String,
}

impl DecodeError {
    pub fn new(message: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        DecodeError {
            message,
            offset,
            reason: reason.into(),
        }
    }
}

/// One column of a tuple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TupleValue {
    Null,
    /// Unchanged TOASTed value (not sent).
    Unchanged,
    Text(Bytes),
    Binary(Bytes),
}

/// A column of a Relation message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity key.
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub xid: Option<u32>,
    pub id: u32,
    pub namespace: String,
    pub name: String,
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

/// Which old tuple an Update or Delete carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldKind {
    /// 'K': the replica identity key columns (others null).
    Key,
    /// 'O': the whole old row (REPLICA IDENTITY FULL).
    Full,
}

/// Two-phase commit message fields (Begin Prepare, Prepare, Stream Prepare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareInfo {
    pub prepare_lsn: Lsn,
    pub end_lsn: Lsn,
    pub ts: i64,
    pub xid: u32,
    pub gid: String,
}

/// A decoded pgoutput message. Timestamps are microseconds since 2000-01-01 (PostgreSQL
/// epoch), as on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgOutput {
    Begin {
        final_lsn: Lsn,
        ts: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        ts: i64,
    },
    Origin {
        lsn: Lsn,
        name: String,
    },
    Relation(Relation),
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        relation: u32,
        new: Vec<TupleValue>,
    },
    Update {
        xid: Option<u32>,
        relation: u32,
        old: Option<(OldKind, Vec<TupleValue>)>,
        new: Vec<TupleValue>,
    },
    Delete {
        xid: Option<u32>,
        relation: u32,
        kind: OldKind,
        old: Vec<TupleValue>,
    },
    Truncate {
        xid: Option<u32>,
        /// Bit 1: CASCADE, bit 2: RESTART IDENTITY.
        options: u8,
        relations: Vec<u32>,
    },
    Message {
        xid: Option<u32>,
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Bytes,
    },
    StreamStart {
        xid: u32,
        first: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        ts: i64,
    },
    StreamAbort {
        xid: u32,
        subxid: u32,
        /// Present with protocol 4 and parallel streaming.
        abort_lsn: Option<Lsn>,
        abort_ts: Option<i64>,
    },
    BeginPrepare(PrepareInfo),
    Prepare {
        flags: u8,
        info: PrepareInfo,
    },
    CommitPrepared {
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        ts: i64,
        xid: u32,
        gid: String,
    },
    RollbackPrepared {
        flags: u8,
        prepare_end_lsn: Lsn,
        rollback_end_lsn: Lsn,
        prepare_ts: i64,
        rollback_ts: i64,
        xid: u32,
        gid: String,
    },
    StreamPrepare {
        flags: u8,
        info: PrepareInfo,
    },
}

impl PgOutput {
    /// The (sub)transaction id a data message carries inside a stream block.
    pub fn stream_xid(&self) -> Option<u32> {
        match self {
            PgOutput::Relation(r) => r.xid,
            PgOutput::Type { xid, .. }
            | PgOutput::Insert { xid, .. }
            | PgOutput::Update { xid, .. }
            | PgOutput::Delete { xid, .. }
            | PgOutput::Truncate { xid, .. }
            | PgOutput::Message { xid, .. } => *xid,
            _ => None,
        }
    }
}

/// Stateful decoder: inside a Stream Start … Stream Stop block, data messages carry a
/// leading transaction id.
#[derive(Debug, Default)]
pub struct Decoder {
    in_stream: bool,
    /// Stream Abort carries abort LSN and timestamp (protocol 4 with streaming = parallel).
    pub parallel_abort_info: bool,
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    msg: &'static str,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.msg, self.pos, reason)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "needs {n} more bytes, {} left",
                self.buf.len() - self.pos
            ))),
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        Ok(Lsn(self.u64()?))
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err("string without terminating NUL"))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| self.err("string is not valid UTF-8"))?
            .to_string();
        self.pos += nul + 1;
        Ok(s)
    }
    fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..start + n))
    }
    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let n = self.u16()? as usize;
        // Each column needs at least one byte: refuse absurd counts before allocating.
        if n > self.buf.len() - self.pos {
            return Err(self.err(format!("tuple claims {n} columns")));
        }
        let mut cols = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            let v = match self.u8()? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.i32()?;
                    if len < 0 {
                        return Err(self.err(format!("negative column length {len}")));
                    }
                    let data = self.bytes(len as usize)?;
                    if kind == b't' {
                        TupleValue::Text(data)
                    } else {
                        TupleValue::Binary(data)
                    }
                }
                other => {
                    return Err(DecodeError::new(
                        self.msg,
                        at,
                        format!("unknown tuple column kind {other:#04x}"),
                    ))
                }
            };
            cols.push(v);
        }
        Ok(cols)
    }
    fn prepare_info(&mut self) -> Result<PrepareInfo, DecodeError> {
        Ok(PrepareInfo {
            prepare_lsn: self.lsn()?,
            end_lsn: self.lsn()?,
            ts: self.i64()?,
            xid: self.u32()?,
            gid: self.cstr()?,
        })
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(self.err(format!(
                "{} unexpected trailing bytes",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }
}

fn message_name(tag: u8) -> &'static str {
    match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        b'S' => "Stream Start",
        b'E' => "Stream Stop",
        b'c' => "Stream Commit",
        b'A' => "Stream Abort",
        b'b' => "Begin Prepare",
        b'P' => "Prepare",
        b'K' => "Commit Prepared",
        b'r' => "Rollback Prepared",
        b'p' => "Stream Prepare",
        _ => "unknown",
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// A decoder inside a stream block: reads the data messages of a streamed
    /// transaction, each with its leading transaction id, as staged on disk.
    pub fn in_stream_block() -> Self {
        Decoder {
            in_stream: true,
            parallel_abort_info: false,
        }
    }

    /// Inside a Stream Start … Stream Stop block.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Decodes one message (the payload of an XLogData record).
    pub fn decode(&mut self, buf: &Bytes) -> Result<PgOutput, DecodeError> {
        let Some(&tag) = buf.first() else {
            return Err(DecodeError::new("empty", 0, "empty message"));
        };
        let mut r = Reader {
            buf,
            pos: 1,
            msg: message_name(tag),
        };
        let stream_xid = |r: &mut Reader, in_stream: bool| -> Result<Option<u32>, DecodeError> {
            if in_stream {
                Ok(Some(r.u32()?))
            } else {
                Ok(None)
            }
        };
        let msg = match tag {
            b'B' => PgOutput::Begin {
                final_lsn: r.lsn()?,
                ts: r.i64()?,
                xid: r.u32()?,
            },
            b'C' => PgOutput::Commit {
                flags: r.u8()?,
                commit_lsn: r.lsn()?,
                end_lsn: r.lsn()?,
                ts: r.i64()?,
            },
            b'O' => PgOutput::Origin {
                lsn: r.lsn()?,
                name: r.cstr()?,
            },
            b'R' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let id = r.u32()?;
                let namespace = r.cstr()?;
                let name = r.cstr()?;
                let replica_identity = r.u8()?;
                let n = r.u16()? as usize;
                if n > buf.len() {
                    return Err(r.err(format!("relation claims {n} columns")));
                }
                let mut columns = Vec::with_capacity(n);
                for _ in 0..n {
                    let flags = r.u8()?;
                    columns.push(RelationColumn {
                        key: flags & 1 == 1,
                        name: r.cstr()?,
                        type_oid: r.u32()?,
                        type_modifier: r.i32()?,
                    });
                }
                PgOutput::Relation(Relation {
                    xid,
                    id,
                    // pgoutput sends an empty namespace for pg_catalog.
                    namespace: if namespace.is_empty() {
                        "pg_catalog".into()
                    } else {
                        namespace
                    },
                    name,
                    replica_identity,
                    columns,
                })
            }
            b'Y' => PgOutput::Type {
                xid: stream_xid(&mut r, self.in_stream)?,
                oid: r.u32()?,
                namespace: r.cstr()?,
                name: r.cstr()?,
            },
            b'I' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let relation = r.u32()?;
                match r.u8()? {
                    b'N' => {}
                    other => return Err(r.err(format!("expected 'N' tuple, got {other:#04x}"))),
                }
                PgOutput::Insert {
                    xid,
                    relation,
                    new: r.tuple()?,
                }
            }
            b'U' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let relation = r.u32()?;
                let mut old = None;
                let mut marker = r.u8()?;
                if marker == b'K' || marker == b'O' {
                    let kind = if marker == b'K' {
                        OldKind::Key
                    } else {
                        OldKind::Full
                    };
                    old = Some((kind, r.tuple()?));
                    marker = r.u8()?;
                }
                if marker != b'N' {
                    return Err(r.err(format!("expected 'N' tuple, got {marker:#04x}")));
                }
                PgOutput::Update {
                    xid,
                    relation,
                    old,
                    new: r.tuple()?,
                }
            }
            b'D' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let relation = r.u32()?;
                let kind = match r.u8()? {
                    b'K' => OldKind::Key,
                    b'O' => OldKind::Full,
                    other => {
                        return Err(r.err(format!("expected 'K' or 'O' tuple, got {other:#04x}")))
                    }
                };
                PgOutput::Delete {
                    xid,
                    relation,
                    kind,
                    old: r.tuple()?,
                }
            }
            b'T' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let n = r.u32()? as usize;
                let options = r.u8()?;
                if n > buf.len() / 4 {
                    return Err(r.err(format!("truncate claims {n} relations")));
                }
                let mut relations = Vec::with_capacity(n);
                for _ in 0..n {
                    relations.push(r.u32()?);
                }
                PgOutput::Truncate {
                    xid,
                    options,
                    relations,
                }
            }
            b'M' => {
                let xid = stream_xid(&mut r, self.in_stream)?;
                let flags = r.u8()?;
                let lsn = r.lsn()?;
                let prefix = r.cstr()?;
                let len = r.u32()? as usize;
                PgOutput::Message {
                    xid,
                    transactional: flags & 1 == 1,
                    lsn,
                    prefix,
                    content: r.bytes(len)?,
                }
            }
            b'S' => {
                if self.in_stream {
                    return Err(r.err("Stream Start inside an open stream block"));
                }
                let m = PgOutput::StreamStart {
                    xid: r.u32()?,
                    first: r.u8()? == 1,
                };
                self.in_stream = true;
                m
            }
            b'E' => {
                if !self.in_stream {
                    return Err(r.err("Stream Stop without Stream Start"));
                }
                self.in_stream = false;
                PgOutput::StreamStop
            }
            b'c' => PgOutput::StreamCommit {
                xid: r.u32()?,
                flags: r.u8()?,
                commit_lsn: r.lsn()?,
                end_lsn: r.lsn()?,
                ts: r.i64()?,
            },
            b'A' => {
                let xid = r.u32()?;
                let subxid = r.u32()?;
                let (abort_lsn, abort_ts) = if self.parallel_abort_info {
                    (Some(r.lsn()?), Some(r.i64()?))
                } else {
                    (None, None)
                };
                PgOutput::StreamAbort {
                    xid,
                    subxid,
                    abort_lsn,
                    abort_ts,
                }
            }
            b'b' => PgOutput::BeginPrepare(r.prepare_info()?),
            b'P' => PgOutput::Prepare {
                flags: r.u8()?,
                info: r.prepare_info()?,
            },
            b'p' => PgOutput::StreamPrepare {
                flags: r.u8()?,
                info: r.prepare_info()?,
            },
            b'K' => PgOutput::CommitPrepared {
                flags: r.u8()?,
                commit_lsn: r.lsn()?,
                end_lsn: r.lsn()?,
                ts: r.i64()?,
                xid: r.u32()?,
                gid: r.cstr()?,
            },
            b'r' => PgOutput::RollbackPrepared {
                flags: r.u8()?,
                prepare_end_lsn: r.lsn()?,
                rollback_end_lsn: r.lsn()?,
                prepare_ts: r.i64()?,
                rollback_ts: r.i64()?,
                xid: r.u32()?,
                gid: r.cstr()?,
            },
            other => {
                return Err(DecodeError::new(
                    "unknown",
                    0,
                    format!("unknown message type {:?} ({other:#04x})", other as char),
                ))
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: Vec<u8>) -> Bytes {
        Bytes::from(v)
    }

    fn begin() -> Vec<u8> {
        let mut v = vec![b'B'];
        v.extend(0x1_0000_0010u64.to_be_bytes());
        v.extend(42i64.to_be_bytes());
        v.extend(777u32.to_be_bytes());
        v
    }

    fn insert() -> Vec<u8> {
        let mut v = vec![b'I'];
        v.extend(16384u32.to_be_bytes());
        v.push(b'N');
        v.extend(3u16.to_be_bytes());
        v.push(b't');
        v.extend(2i32.to_be_bytes());
        v.extend(b"42");
        v.push(b'n');
        v.push(b'u');
        v
    }

    #[test]
    fn decodes_begin_and_insert() {
        let mut d = Decoder::new();
        assert_eq!(
            d.decode(&b(begin())).unwrap(),
            PgOutput::Begin {
                final_lsn: Lsn(0x1_0000_0010),
                ts: 42,
                xid: 777
            }
        );
        assert_eq!(
            d.decode(&b(insert())).unwrap(),
            PgOutput::Insert {
                xid: None,
                relation: 16384,
                new: vec![
                    TupleValue::Text(Bytes::from_static(b"42")),
                    TupleValue::Null,
                    TupleValue::Unchanged
                ]
            }
        );
    }

    #[test]
    fn decodes_relation() {
        let mut v = vec![b'R'];
        v.extend(16384u32.to_be_bytes());
        v.extend(b"public\0orders\0");
        v.push(b'd');
        v.extend(1u16.to_be_bytes());
        v.push(1);
        v.extend(b"id\0");
        v.extend(23u32.to_be_bytes());
        v.extend((-1i32).to_be_bytes());
        let m = Decoder::new().decode(&b(v)).unwrap();
        let PgOutput::Relation(r) = m else { panic!() };
        assert_eq!(r.name, "orders");
        assert_eq!(r.namespace, "public");
        assert_eq!(
            r.columns,
            vec![RelationColumn {
                key: true,
                name: "id".into(),
                type_oid: 23,
                type_modifier: -1
            }]
        );
    }

    #[test]
    fn streamed_messages_carry_xid() {
        let mut d = Decoder::new();
        let mut start = vec![b'S'];
        start.extend(9u32.to_be_bytes());
        start.push(1);
        assert_eq!(
            d.decode(&b(start)).unwrap(),
            PgOutput::StreamStart {
                xid: 9,
                first: true
            }
        );
        let mut ins = vec![b'I'];
        ins.extend(9u32.to_be_bytes());
        ins.extend(&insert()[1..]);
        match d.decode(&b(ins)).unwrap() {
            PgOutput::Insert { xid, .. } => assert_eq!(xid, Some(9)),
            m => panic!("{m:?}"),
        }
        assert_eq!(d.decode(&b(vec![b'E'])).unwrap(), PgOutput::StreamStop);
        // Outside the block, the same bytes lack the xid and fail on trailing data.
        assert!(d.decode(&b(vec![b'E'])).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for msg in [begin(), insert()] {
            for cut in 0..msg.len() {
                let err = Decoder::new().decode(&b(msg[..cut].to_vec()));
                assert!(err.is_err(), "cut at {cut} of {msg:?}");
            }
        }
    }

    #[test]
    fn errors_name_message_and_offset() {
        let mut m = insert();
        m[8] = b'X';
        let e = Decoder::new().decode(&b(m)).unwrap_err();
        assert_eq!(e.message, "Insert");
        assert_eq!(e.offset, 8);
        assert!(e.to_string().contains("Insert"), "{e}");
        let e = Decoder::new().decode(&b(vec![b'Z', 1])).unwrap_err();
        assert!(e.reason.contains("unknown message type"), "{e}");
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut v = vec![b'I'];
        v.extend(1u32.to_be_bytes());
        v.push(b'N');
        v.extend(u16::MAX.to_be_bytes());
        assert!(Decoder::new().decode(&b(v)).is_err());
        let mut t = vec![b'T'];
        t.extend(u32::MAX.to_be_bytes());
        t.push(0);
        assert!(Decoder::new().decode(&b(t)).is_err());
    }
}
