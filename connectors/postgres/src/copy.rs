//! Splitting the bytes of `COPY … TO STDOUT` into rows, in text or binary format.
//!
//! The server sends one row per CopyData message, but nothing here relies on it: bytes
//! are pushed as they arrive and complete rows are taken out, so a row may span messages.
//! Malformed input is an error naming the offset, never a panic (fuzzed).

/// COPY's output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated text, `\N` for null, backslash escapes.
    Text,
    /// `PGCOPY` header, then per row a field count and length-prefixed fields.
    Binary,
}

/// Malformed COPY data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed COPY {format:?} data at byte {offset}: {reason}")]
pub struct CopyError {
    pub format: Format,
    pub offset: u64,
    pub reason: &'static str,
}

/// Scratch space for rows, reused between them: the fields' ranges, and for text the
/// unescaped bytes.
#[derive(Default, Debug)]
pub struct Row {
    data: Vec<u8>,
    fields: Vec<Option<(usize, usize)>>,
}

/// One row: field `i` is `fields[i]`, a range of `data` (`None` for NULL). Binary rows
/// are read in place from the decoder's buffer (no copy).
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    data: &'a [u8],
    fields: &'a [Option<(usize, usize)>],
}

impl<'a> RowRef<'a> {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i`'s bytes; `None` for NULL or past the row's end.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let (a, b) = (*self.fields.get(i)?)?;
        self.data.get(a..b)
    }

    /// The bytes of the row's values.
    pub fn value_bytes(&self) -> usize {
        self.fields.iter().flatten().map(|(a, b)| b - a).sum()
    }
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Bytes in, rows out.
pub struct CopyDecoder {
    format: Format,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes dropped from the front of `buf` so far (for error offsets).
    consumed: u64,
    header_done: bool,
    trailer_seen: bool,
}

impl CopyDecoder {
    pub fn new(format: Format) -> Self {
        CopyDecoder {
            format,
            buf: Vec::new(),
            pos: 0,
            consumed: 0,
            header_done: format == Format::Text,
            trailer_seen: false,
        }
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.consumed += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.consumed += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete row (`row` is its scratch space); `None` when more bytes are
    /// needed (or the binary trailer was read).
    pub fn next_row<'a>(&'a mut self, row: &'a mut Row) -> Result<Option<RowRef<'a>>, CopyError> {
        row.data.clear();
        row.fields.clear();
        let format = self.format;
        let found = match format {
            Format::Text => self.text_row(row)?,
            Format::Binary => self.binary_row(row)?,
        };
        if !found {
            return Ok(None);
        }
        let data: &[u8] = match format {
            Format::Text => &row.data,
            Format::Binary => &self.buf,
        };
        Ok(Some(RowRef {
            data,
            fields: &row.fields,
        }))
    }

    /// Checks that the stream ended between rows (and, for binary, after its trailer).
    pub fn finish(&self) -> Result<(), CopyError> {
        if self.pos != self.buf.len() {
            return Err(self.error(self.pos, "the stream ended inside a row"));
        }
        if self.format == Format::Binary && !self.trailer_seen {
            return Err(self.error(self.pos, "the stream ended without the binary trailer"));
        }
        Ok(())
    }

    fn error(&self, at: usize, reason: &'static str) -> CopyError {
        CopyError {
            format: self.format,
            offset: self.consumed + at as u64,
            reason,
        }
    }

    fn text_row(&mut self, row: &mut Row) -> Result<bool, CopyError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(false);
        };
        let line = &rest[..end];
        let mut start = 0;
        let mut i = 0;
        let mut field_start = 0;
        loop {
            let at_end = i == line.len();
            if at_end || line[i] == b'\t' {
                let raw = &line[start..i];
                if raw == b"\\N" {
                    row.fields.push(None);
                } else {
                    row.fields.push(Some((field_start, row.data.len())));
                }
                if at_end {
                    break;
                }
                i += 1;
                start = i;
                field_start = row.data.len();
                continue;
            }
            let c = line[i];
            if c != b'\\' {
                row.data.push(c);
                i += 1;
                continue;
            }
            let Some(&e) = line.get(i + 1) else {
                return Err(self.error(self.pos + i, "a backslash ends the row"));
            };
            i += 2;
            let byte = match e {
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                b'N' => {
                    // `\N` is a null only as a whole field.
                    if i - 2 == start && (i == line.len() || line[i] == b'\t') {
                        continue;
                    }
                    return Err(self.error(self.pos + i - 2, "\\N inside a field"));
                }
                b'0'..=b'7' => {
                    let mut v = (e - b'0') as u32;
                    for _ in 0..2 {
                        match line.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + (d - b'0') as u32;
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    (v & 0xff) as u8
                }
                b'x' => {
                    let mut v = 0u8;
                    let mut n = 0;
                    while n < 2 {
                        let Some(d) = line.get(i).and_then(|d| (*d as char).to_digit(16)) else {
                            break;
                        };
                        v = v * 16 + d as u8;
                        i += 1;
                        n += 1;
                    }
                    if n == 0 {
                        b'x'
                    } else {
                        v
                    }
                }
                other => other,
            };
            row.data.push(byte);
        }
        self.pos += end + 1;
        Ok(true)
    }

    fn binary_row(&mut self, row: &mut Row) -> Result<bool, CopyError> {
        if self.trailer_seen {
            return if self.pos == self.buf.len() {
                Ok(false)
            } else {
                Err(self.error(self.pos, "bytes after the binary trailer"))
            };
        }
        if !self.header_done {
            let rest = &self.buf[self.pos..];
            if rest.len() < SIGNATURE.len() + 8 {
                return Ok(false);
            }
            if &rest[..SIGNATURE.len()] != SIGNATURE {
                return Err(self.error(self.pos, "no PGCOPY signature"));
            }
            let ext = i32::from_be_bytes(rest[15..19].try_into().expect("4 bytes"));
            let ext = usize::try_from(ext)
                .map_err(|_| self.error(self.pos + 15, "negative header extension length"))?;
            if rest.len() < 19 + ext {
                return Ok(false);
            }
            self.pos += 19 + ext;
            self.header_done = true;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < 2 {
            return Ok(false);
        }
        let count = i16::from_be_bytes([rest[0], rest[1]]);
        if count == -1 {
            self.pos += 2;
            self.trailer_seen = true;
            return Ok(false);
        }
        let count =
            usize::try_from(count).map_err(|_| self.error(self.pos, "negative field count"))?;
        let mut at = 2;
        for _ in 0..count {
            let Some(len) = rest.get(at..at + 4) else {
                row.fields.clear();
                return Ok(false);
            };
            let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
            at += 4;
            if len == -1 {
                row.fields.push(None);
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| self.error(self.pos + at - 4, "negative field length"))?;
            if rest.len() < at + len {
                row.fields.clear();
                return Ok(false);
            }
            row.fields.push(Some((self.pos + at, self.pos + at + len)));
            at += len;
        }
        self.pos += at;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(format: Format, chunks: &[&[u8]]) -> Result<Vec<Vec<Option<Vec<u8>>>>, CopyError> {
        let mut d = CopyDecoder::new(format);
        let mut row = Row::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(r) = d.next_row(&mut row)? {
                out.push((0..r.len()).map(|i| r.get(i).map(<[u8]>::to_vec)).collect());
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn text_rows_with_escapes_and_nulls() {
        let got = rows(
            Format::Text,
            &[b"1\ta\\tb\\\\c\t\\N\n2\t\\N", b"\t\\n\\101\\x41\t\n"],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                vec![Some(b"1".to_vec()), Some(b"a\tb\\c".to_vec()), None],
                vec![
                    Some(b"2".to_vec()),
                    None,
                    Some(b"\nAA".to_vec()),
                    Some(vec![])
                ],
            ]
        );
    }

    #[test]
    fn binary_rows_split_anywhere() {
        let mut all = SIGNATURE.to_vec();
        all.extend(0i32.to_be_bytes());
        all.extend(0i32.to_be_bytes());
        for (id, name) in [(1i32, Some("a")), (2, None)] {
            all.extend(2i16.to_be_bytes());
            all.extend(4i32.to_be_bytes());
            all.extend(id.to_be_bytes());
            match name {
                Some(n) => {
                    all.extend((n.len() as i32).to_be_bytes());
                    all.extend(n.as_bytes());
                }
                None => all.extend((-1i32).to_be_bytes()),
            }
        }
        all.extend((-1i16).to_be_bytes());
        let want = vec![
            vec![Some(1i32.to_be_bytes().to_vec()), Some(b"a".to_vec())],
            vec![Some(2i32.to_be_bytes().to_vec()), None],
        ];
        for split in 0..all.len() {
            let (a, b) = all.split_at(split);
            assert_eq!(
                rows(Format::Binary, &[a, b]).unwrap(),
                want,
                "split {split}"
            );
        }
        // Cut short: an error at the end, not a row.
        assert!(rows(Format::Binary, &[&all[..all.len() - 3]]).is_err());
    }

    #[test]
    fn malformed_input_is_an_error() {
        for (f, bytes) in [
            (Format::Text, &b"a\\"[..]),
            (Format::Text, b"a\\\n"),
            (Format::Text, b"a\\Nb\n"),
            (Format::Text, b"no newline"),
            (Format::Binary, b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0"),
            (
                Format::Binary,
                b"PGCOPY\n\xff\r\n\0\0\0\0\0\xff\xff\xff\xff",
            ),
        ] {
            assert!(rows(f, &[bytes]).is_err(), "{bytes:?}");
        }
    }
}
