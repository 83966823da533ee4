//! Replays the raw record batch parser's fuzz corpus (fuzz/corpus/kafka_batches)
//! through the fuzz target's own harness: every seed and every crash ever found must
//! run without panicking.

#[path = "../../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/harness/kafka_batches.rs"]
mod harness;

#[test]
fn kafka_batches_corpus_parses_without_panic() {
    corpus::replay("kafka_batches", harness::run);
}
