//! Replays the fuzz corpora of the pgoutput decoder, the text value parsers and the
//! binary value reader with the COPY decoder (fuzz/corpus/pgoutput, pg_text, pg_binary) through the fuzz targets' own harness:
//! every seed and every crash ever found must run without panicking.

#[path = "../../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/harness/pg_binary.rs"]
mod pg_binary_harness;
#[path = "../../../fuzz/harness/pg_text.rs"]
mod pg_text_harness;
#[path = "../../../fuzz/harness/pgoutput.rs"]
mod pgoutput_harness;

#[test]
fn pgoutput_corpus_decodes_without_panic() {
    corpus::replay("pgoutput", pgoutput_harness::run);
}

#[test]
fn pg_text_corpus_parses_without_panic() {
    let types = pg_text_harness::types();
    corpus::replay("pg_text", |data| pg_text_harness::run_with(&types, data));
}

#[test]
fn pg_binary_corpus_reads_without_panic() {
    let types = pg_text_harness::types();
    corpus::replay("pg_binary", |data| {
        pg_binary_harness::run_with(&types, data)
    });
}
