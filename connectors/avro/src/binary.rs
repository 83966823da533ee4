//! Avro binary encoding primitives, writing into a caller-owned buffer.

#[inline]
pub fn long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

#[inline]
pub fn int(buf: &mut Vec<u8>, v: i32) {
    long(buf, v as i64)
}

#[inline]
pub fn boolean(buf: &mut Vec<u8>, v: bool) {
    buf.push(v as u8)
}

#[inline]
pub fn float(buf: &mut Vec<u8>, v: f32) {
    buf.extend_from_slice(&v.to_le_bytes())
}

#[inline]
pub fn double(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes())
}

#[inline]
pub fn bytes(buf: &mut Vec<u8>, v: &[u8]) {
    long(buf, v.len() as i64);
    buf.extend_from_slice(v)
}

#[inline]
pub fn string(buf: &mut Vec<u8>, v: &str) {
    bytes(buf, v.as_bytes())
}

/// Union branch index.
#[inline]
pub fn branch(buf: &mut Vec<u8>, index: usize) {
    long(buf, index as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_varints_match_the_spec() {
        // Examples from the Avro specification.
        for (v, want) in [
            (0i64, vec![0x00u8]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-2, vec![0x03]),
            (2, vec![0x04]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut b = Vec::new();
            long(&mut b, v);
            assert_eq!(b, want, "{v}");
        }
        let mut b = Vec::new();
        long(&mut b, i64::MIN);
        assert_eq!(b.len(), 10);
    }
}
