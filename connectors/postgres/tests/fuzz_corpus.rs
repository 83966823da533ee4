//! Replays the fuzz corpora of the pgoutput decoder and the text value parsers
//! (fuzz/corpus/pgoutput, fuzz/corpus/pg_text) through the fuzz targets' own harness:
//! every seed and every crash ever found must run without panicking.

#[path = "../../../fuzz/harness/corpus.rs"]
mod corpus;
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
