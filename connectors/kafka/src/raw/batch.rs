//! Record batches (magic 2) and Kafka's read_committed rules, applied by us: the broker
//! may not filter aborted transactions (tansu does not), so control batches decide.

use std::collections::HashMap;

use super::wire::{Reader, Result, WireError};

/// One record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// One batch: data or a control marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// Some(true) commit marker, Some(false) abort marker, None for data.
    pub control: Option<bool>,
    pub records: Vec<Record>,
}

const ATTR_COMPRESSION: i16 = 0x07;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Parses the record batches of a fetch response partition. A trailing partial batch
/// (the broker may cut at max bytes) is ignored.
pub fn parse_batches(mut data: &[u8]) -> Result<Vec<Batch>> {
    let mut out = Vec::new();
    while data.len() >= 12 {
        let base_offset = i64::from_be_bytes(data[0..8].try_into().expect("8"));
        let len = i32::from_be_bytes(data[8..12].try_into().expect("4"));
        if len < 0 {
            return Err(WireError(format!("negative batch length {len}")));
        }
        let total = 12 + len as usize;
        if data.len() < total {
            break;
        }
        let mut r = Reader::new(&data[12..total]);
        let _leader_epoch = r.i32()?;
        let magic = r.i8()?;
        if magic != 2 {
            return Err(WireError(format!("record batch magic {magic}, expected 2")));
        }
        let _crc = r.u32()?;
        let attributes = r.i16()?;
        let last_delta = r.i32()?;
        let _base_ts = r.i64()?;
        let _max_ts = r.i64()?;
        let producer_id = r.i64()?;
        let _epoch = r.i16()?;
        let _base_seq = r.i32()?;
        let count = r.i32()?;
        if attributes & ATTR_COMPRESSION != 0 {
            return Err(WireError(format!(
                "compressed record batch (codec {}) at offset {base_offset}: the offsets topic must be written without compression",
                attributes & ATTR_COMPRESSION
            )));
        }
        if count < 0 || count as usize > r.remaining() {
            return Err(WireError(format!("batch claims {count} records")));
        }
        let control_flag = attributes & ATTR_CONTROL != 0;
        let mut records = Vec::with_capacity(count as usize);
        let mut control = None;
        for _ in 0..count {
            let len = r.varlong()?;
            let len =
                usize::try_from(len).map_err(|_| WireError("negative record length".into()))?;
            let mut rr = Reader::new(r.take(len)?);
            let _attrs = rr.i8()?;
            let _ts_delta = rr.varlong()?;
            let offset_delta = rr.varlong()?;
            let key = rr.var_bytes()?.map(<[u8]>::to_vec);
            let value = rr.var_bytes()?.map(<[u8]>::to_vec);
            if control_flag {
                // Control record key: version int16, type int16 (0 abort, 1 commit).
                let k = key.as_deref().unwrap_or_default();
                if k.len() >= 4 {
                    control = Some(i16::from_be_bytes([k[2], k[3]]) == 1);
                }
            }
            let offset = base_offset.checked_add(offset_delta).ok_or_else(|| {
                WireError(format!(
                    "record offset delta {offset_delta} overflows base offset {base_offset}"
                ))
            })?;
            records.push(Record { offset, key, value });
        }
        if control_flag && control.is_none() {
            return Err(WireError(format!(
                "control batch at {base_offset} without a marker"
            )));
        }
        let last_offset = base_offset
            .checked_add(i64::from(last_delta))
            .ok_or_else(|| {
                WireError(format!(
                    "last offset delta {last_delta} overflows base offset {base_offset}"
                ))
            })?;
        out.push(Batch {
            base_offset,
            last_offset,
            producer_id,
            transactional: attributes & ATTR_TRANSACTIONAL != 0,
            control,
            records: if control_flag { Vec::new() } else { records },
        });
        data = &data[total..];
    }
    Ok(out)
}

/// Applies read_committed: non-transactional records are visible at once; a producer's
/// transactional records become visible at its commit marker and are dropped at its
/// abort marker. Records of a transaction still open at the end are not returned.
#[derive(Default)]
pub struct ReadCommitted {
    pending: HashMap<i64, Vec<Record>>,
    pub committed: Vec<Record>,
    pub aborted_records: usize,
}

impl ReadCommitted {
    pub fn push(&mut self, b: Batch) {
        match (b.transactional, b.control) {
            (_, Some(commit)) => {
                let recs = self.pending.remove(&b.producer_id).unwrap_or_default();
                if commit {
                    self.committed.extend(recs);
                } else {
                    self.aborted_records += recs.len();
                }
            }
            (true, None) => self
                .pending
                .entry(b.producer_id)
                .or_default()
                .extend(b.records),
            (false, None) => self.committed.extend(b.records),
        }
    }

    /// Records of transactions with no marker yet.
    pub fn undecided(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, txn: bool, control: Option<bool>, offs: &[i64]) -> Batch {
        Batch {
            base_offset: offs.first().copied().unwrap_or(0),
            last_offset: offs.last().copied().unwrap_or(0),
            producer_id: pid,
            transactional: txn,
            control,
            records: offs
                .iter()
                .map(|&o| Record {
                    offset: o,
                    key: None,
                    value: Some(vec![o as u8]),
                })
                .collect(),
        }
    }

    #[test]
    fn read_committed_rules() {
        let mut rc = ReadCommitted::default();
        rc.push(batch(1, true, None, &[0, 1]));
        rc.push(batch(2, true, None, &[2]));
        rc.push(batch(3, false, None, &[3])); // plain: visible now
        rc.push(batch(1, true, Some(false), &[4])); // abort producer 1
        rc.push(batch(2, true, Some(true), &[5])); // commit producer 2
        rc.push(batch(1, true, None, &[6])); // producer 1 again, no marker yet
        let offs: Vec<i64> = rc.committed.iter().map(|r| r.offset).collect();
        assert_eq!(offs, [3, 2]);
        assert_eq!(rc.aborted_records, 2);
        assert_eq!(rc.undecided(), 1);
    }

    #[test]
    fn parses_a_batch_and_rejects_garbage() {
        // A batch with one record (key "k", value "v"), transactional, producer 7.
        let rec: Vec<u8> = vec![
            0, // attributes
            0, // timestamp delta
            0, // offset delta
            2, // key length 1 (zigzag)
            b'k', 2, // value length 1
            b'v', 0, // headers
        ];
        let mut body = Vec::new();
        body.extend(0i32.to_be_bytes()); // leader epoch
        body.push(2); // magic
        body.extend(0u32.to_be_bytes()); // crc (not checked)
        body.extend(ATTR_TRANSACTIONAL.to_be_bytes());
        body.extend(0i32.to_be_bytes()); // last offset delta
        body.extend(0i64.to_be_bytes());
        body.extend(0i64.to_be_bytes());
        body.extend(7i64.to_be_bytes());
        body.extend(0i16.to_be_bytes());
        body.extend(0i32.to_be_bytes());
        body.extend(1i32.to_be_bytes());
        body.push((rec.len() as u8) << 1);
        body.extend(&rec);
        let mut data = Vec::new();
        data.extend(42i64.to_be_bytes());
        data.extend((body.len() as i32).to_be_bytes());
        data.extend(&body);
        let b = parse_batches(&data).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].producer_id, 7);
        assert!(b[0].transactional);
        assert_eq!(b[0].records[0].offset, 42);
        assert_eq!(b[0].records[0].key.as_deref(), Some(&b"k"[..]));
        // Every truncation parses to fewer batches or an error, never a panic.
        for cut in 0..data.len() {
            let _ = parse_batches(&data[..cut]);
        }
        let mut bad = data.clone();
        bad[16] = 1; // magic
        assert!(parse_batches(&bad).is_err());
    }
}
