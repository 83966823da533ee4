//! librdkafka error codes read without undefined behaviour. rust-rdkafka reads a
//! transaction error's code from C straight into a Rust enum; a code librdkafka passes on
//! from a broker without knowing it itself is no value of that enum, and the process dies
//! on an illegal instruction (rust-rdkafka issue #127). Seen with the test broker: after a
//! restart it answers AddPartitionsToTxn with 105 (TRANSACTIONAL_ID_NOT_FOUND), unknown
//! to librdkafka 2.12. The error's name is a string, safe to read; known names map back
//! to their codes here, and any other is [`RDKafkaErrorCode::Unknown`].

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::OnceLock;

use rdkafka::error::{KafkaError, RDKafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;

/// Every code librdkafka knows, by its name (as `rd_kafka_err2name` gives it).
fn by_name() -> &'static HashMap<String, RDKafkaRespErr> {
    static NAMES: OnceLock<HashMap<String, RDKafkaRespErr>> = OnceLock::new();
    NAMES.get_or_init(|| {
        (-200..=1000)
            .filter_map(|i| RDKafkaRespErr::try_from(i).ok())
            .map(|code| {
                // SAFETY: `code` is a valid enum value; librdkafka returns a static
                // (or thread-local) NUL-terminated string for every code.
                let name = unsafe { CStr::from_ptr(rdkafka::bindings::rd_kafka_err2name(code)) };
                (name.to_string_lossy().into_owned(), code)
            })
            .collect()
    })
}

/// The code of a transaction error; `Unknown` for one librdkafka does not know (its
/// number is in the error's name and message, e.g. `ERR_105?`).
pub fn txn_code(e: &RDKafkaError) -> RDKafkaErrorCode {
    by_name()
        .get(&e.name())
        .map_or(RDKafkaErrorCode::Unknown, |&c| c.into())
}

/// [`KafkaError::rdkafka_error_code`] without its crash on a transaction error whose code
/// librdkafka does not know.
pub fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::Transaction(t) => Some(txn_code(t)),
        other => other.rdkafka_error_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_back_to_their_codes() {
        let names = by_name();
        assert!(names.len() > 150, "{}", names.len());
        for (name, code) in [
            ("PRODUCER_FENCED", RDKafkaErrorCode::ProducerFenced),
            ("_FENCED", RDKafkaErrorCode::Fenced),
            (
                "INVALID_PRODUCER_EPOCH",
                RDKafkaErrorCode::InvalidProducerEpoch,
            ),
            ("NO_ERROR", RDKafkaErrorCode::NoError),
        ] {
            let got: RDKafkaErrorCode = names[name].into();
            assert_eq!(got, code, "{name}");
        }
        assert!(!names.contains_key("ERR_105?"));
    }
}
