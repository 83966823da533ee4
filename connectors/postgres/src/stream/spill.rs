//! Streamed (in-progress) transactions, staged on local disk until they end.
//!
//! With streaming on, PostgreSQL sends a large transaction in chunks while it still runs,
//! interleaved with whole transactions that commit before it, and the transaction (or one
//! of its subtransactions) may still abort. A Kafka producer has one open transaction, so
//! a chunk cannot go to Kafka before the source commit without exposing work that may
//! abort or holding back the transactions that commit first. So each chunk's messages are
//! appended as received to a file of their transaction, open only during the block
//! (memory: one write buffer, however many transactions run); a Stream Commit replays the
//! file through the ordinary decoding path as one transaction, without the aborted
//! subtransactions; a Stream Abort deletes it. This is what PostgreSQL's own subscriber
//! does with its stream files.
//!
//! Nothing staged is ever confirmed to PostgreSQL: after a reconnect it streams every
//! unfinished transaction again from its start, so the files of a previous connection
//! are deleted. A transaction replays to the same events, with the same ordinals, as if
//! it had been sent whole after its commit.
//!
//! Staging failures are [`PgError::Spill`]: no room, over `limit` bytes, a directory
//! that is locked by another instance or not private, a damaged file, or a rolled-back
//! savepoint whose streamed logical messages cannot be told apart. The source then
//! reconnects from the last committed position with streaming off, and PostgreSQL spills
//! large transactions on its side instead.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use sluice_core::{EventBatch, Lsn, MAX_EVENT_BATCH};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::decode::{self, State};
use super::Context;
use crate::error::PgError;
use crate::pgoutput::{Decoder, PgOutput};
use crate::SourceStats;

/// Bytes before each staged message: payload length, subtransaction id, WAL position,
/// arrival number.
const HEADER: usize = 24;
/// Rolled-back subtransactions remembered per streamed transaction (about 4 MB at most).
const MAX_ABORTED_SUBTRANSACTIONS: usize = 100_000;
/// Write and read buffer of one staged transaction.
const BUFFER: usize = 256 << 10;

/// The streamed transactions of one replication connection.
pub struct Spill {
    /// Held (locked) while this connection stages in `dir`.
    _lock: std::fs::File,
    dir: PathBuf,
    /// Most bytes staged at once, over every open transaction.
    limit: u64,
    staged: u64,
    open: HashMap<u32, Staged>,
    /// The transaction of the open stream block, and its file (open only in the block).
    block: Option<(u32, BufWriter<File>)>,
    stats: Arc<SourceStats>,
}

struct Staged {
    path: PathBuf,
    bytes: u64,
    /// Subtransactions rolled back: their messages are skipped at replay.
    aborted: HashSet<u32>,
    /// A transactional logical message was staged: pgoutput tags it with the top-level
    /// transaction, not its subtransaction.
    messages: bool,
}

/// The commit that ends a streamed transaction.
#[derive(Clone, Copy, Debug)]
pub struct StreamEnd {
    pub xid: u32,
    pub flags: u8,
    pub commit_lsn: Lsn,
    pub end_lsn: Lsn,
    /// PostgreSQL epoch µs, as on the wire.
    pub ts: i64,
}

impl Spill {
    /// Staging in `dir` (created if missing; files left by an earlier run deleted).
    pub async fn open(dir: &Path, limit: u64, stats: Arc<SourceStats>) -> Result<Spill, PgError> {
        let failed = |what: &str, e: std::io::Error| spill_error(&stats, dir, what, e);
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| failed("create the directory", e))?;
        // Staged rows are the database's data: the directory is this user's alone. A
        // symbolic link, or a directory of another user (a predictable path in a shared
        // /tmp), is refused: changing its mode fails when it is not ours.
        let meta = tokio::fs::symlink_metadata(dir)
            .await
            .map_err(|e| failed("inspect the directory", e))?;
        if !meta.is_dir() {
            let e = std::io::Error::other("not a directory (a symbolic link is refused)");
            return Err(failed("use the directory", e));
        }
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .await
                .map_err(|e| failed("make the directory private (mode 0700)", e))?;
        }
        // One instance per directory: another one's files must not be taken for stale.
        let lock = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .await
            .map_err(|e| failed("open its lock file", e))?
            .into_std()
            .await;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                stats.streaming_refused.store(true, Ordering::Relaxed);
                return Err(PgError::Spill {
                    dir: dir.display().to_string(),
                    reason: "another Sluice instance stages its transactions there (give each instance its own source.postgres.spill_dir)".into(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed("lock it", e)),
        }
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| failed("list the directory", e))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| failed("list the directory", e))?
        {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "spill") {
                match tokio::fs::remove_file(&path).await {
                    // (Gone already: the previous connection's files are deleted in
                    // the background.)
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(failed("delete a stale file", e));
                    }
                    _ => {}
                }
            }
        }
        stats.spill_local_bytes.store(0, Ordering::Relaxed);
        Ok(Spill {
            _lock: lock,
            dir: dir.to_path_buf(),
            limit,
            staged: 0,
            open: HashMap::new(),
            block: None,
            stats,
        })
    }

    fn error(&self, what: &str, e: std::io::Error) -> PgError {
        spill_error(&self.stats, &self.dir, what, e)
    }

    /// Stream Start: later data messages belong to `xid` until Stream Stop.
    pub async fn start(&mut self, xid: u32, first: bool) -> Result<(), PgError> {
        let file = match self.open.get(&xid) {
            Some(_) if first => {
                return Err(PgError::protocol(
                    "replication",
                    format!("Stream Start of transaction {xid} marked first twice"),
                ));
            }
            Some(s) => tokio::fs::OpenOptions::new()
                .append(true)
                .open(&s.path)
                .await
                .map_err(|e| self.error("reopen a file", e))?,
            None if !first => {
                return Err(PgError::protocol(
                    "replication",
                    format!("Stream Start continues transaction {xid}, whose first chunk this connection never received"),
                ));
            }
            None => {
                let path = self.dir.join(format!("{xid}.spill"));
                let file = File::create(&path)
                    .await
                    .map_err(|e| self.error("create a file", e))?;
                tracing::debug!(xid, "streamed transaction staged on disk");
                self.open.insert(
                    xid,
                    Staged {
                        path,
                        bytes: 0,
                        aborted: HashSet::new(),
                        messages: false,
                    },
                );
                self.stats.streamed_open.fetch_add(1, Ordering::Relaxed);
                file
            }
        };
        self.block = Some((xid, BufWriter::with_capacity(BUFFER, file)));
        Ok(())
    }

    /// Stream Stop: the block's file is written out and closed.
    pub async fn stop(&mut self) -> Result<(), PgError> {
        if let Some((_, mut file)) = self.block.take() {
            // Written, not synced: after a crash PostgreSQL sends the transaction again.
            file.flush().await.map_err(|e| self.error("write", e))?;
        }
        Ok(())
    }

    /// A data message of the open stream block, as received (`payload` is the pgoutput
    /// message; `subxid` the (sub)transaction it carries; `lsn` its WAL record;
    /// `arrival` its number in arrival order).
    pub async fn append(
        &mut self,
        subxid: u32,
        lsn: Lsn,
        arrival: u64,
        payload: &[u8],
    ) -> Result<(), PgError> {
        let Some((xid, _)) = self.block else {
            return Err(PgError::protocol(
                "replication",
                "streamed data message outside a stream block",
            ));
        };
        let size = (HEADER + payload.len()) as u64;
        if self.staged + size > self.limit {
            self.stats.streaming_refused.store(true, Ordering::Relaxed);
            return Err(PgError::Spill {
                dir: self.dir.display().to_string(),
                reason: format!(
                    "running transactions need more than source.postgres.spill_max_mb ({}); raise it (with room in the directory) to keep streaming them",
                    if self.limit.is_multiple_of(1 << 20) {
                        format!("{} MiB", self.limit >> 20)
                    } else {
                        format!("{} bytes", self.limit)
                    }
                ),
            });
        }
        let len = u32::try_from(payload.len())
            .map_err(|_| PgError::protocol("replication", "streamed message larger than 4 GiB"))?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4..8].copy_from_slice(&subxid.to_be_bytes());
        header[8..16].copy_from_slice(&lsn.0.to_be_bytes());
        header[16..].copy_from_slice(&arrival.to_be_bytes());
        if let Some((_, file)) = self.block.as_mut() {
            let r = async {
                file.write_all(&header).await?;
                file.write_all(payload).await
            }
            .await;
            r.map_err(|e| self.error("write", e))?;
        }
        if let Some(s) = self.open.get_mut(&xid) {
            s.bytes += size;
            s.messages |= payload.first() == Some(&b'M');
        }
        self.staged += size;
        self.stats
            .spill_local_bytes
            .fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Stream Abort: of the whole transaction (`subxid == xid`: its file is deleted), or
    /// of one subtransaction (its messages are skipped at replay). A transaction never
    /// staged (nothing of it was streamed here) has nothing to undo.
    ///
    /// pgoutput tags a streamed logical message with the top-level transaction, so once a
    /// transaction that staged one rolls back a subtransaction, which messages to drop is
    /// unknown: that is a staging failure (the transaction comes again, whole after its
    /// commit, with streaming off).
    pub async fn abort(&mut self, xid: u32, subxid: u32) -> Result<(), PgError> {
        if xid == subxid {
            if let Some(s) = self.open.remove(&xid) {
                self.release(&s);
                if self.block.as_ref().is_some_and(|(b, _)| *b == xid) {
                    self.block = None;
                }
                remove_in_background(s.path);
                self.stats.streamed_aborts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(xid, "streamed transaction aborted; staged changes dropped");
            }
        } else if let Some(s) = self.open.get_mut(&xid) {
            if s.messages {
                self.stats.streaming_refused.store(true, Ordering::Relaxed);
                return Err(PgError::Spill {
                    dir: self.dir.display().to_string(),
                    reason: format!("transaction {xid} rolled back a savepoint after a logical message (pg_logical_emit_message, or captured DDL) was streamed, and pgoutput does not say which subtransaction a streamed message belongs to"),
                });
            }
            // (Bounded: a loop rolling back a savepoint per row could grow it without end.)
            if s.aborted.len() >= MAX_ABORTED_SUBTRANSACTIONS {
                self.stats.streaming_refused.store(true, Ordering::Relaxed);
                return Err(PgError::Spill {
                    dir: self.dir.display().to_string(),
                    reason: format!("transaction {xid} rolled back more than {MAX_ABORTED_SUBTRANSACTIONS} savepoints while streamed"),
                });
            }
            s.aborted.insert(subxid);
        }
        Ok(())
    }

    fn release(&mut self, s: &Staged) {
        self.staged -= s.bytes;
        self.stats
            .spill_local_bytes
            .fetch_sub(s.bytes, Ordering::Relaxed);
        self.stats.streamed_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Stream Commit: the staged transaction, ready to replay. A transaction that
    /// streamed nothing here replays as an empty one.
    pub async fn commit(&mut self, end: StreamEnd) -> Result<Replay, PgError> {
        if self.block.is_some() {
            return Err(PgError::protocol(
                "replication",
                "Stream Commit inside a stream block",
            ));
        }
        let Some(s) = self.open.remove(&end.xid) else {
            return Ok(Replay::empty(end));
        };
        self.release(&s);
        let file = match File::open(&s.path).await {
            Ok(f) => f,
            Err(e) => {
                remove_in_background(s.path);
                return Err(self.error("read back a file", e));
            }
        };
        self.stats.streamed_txns.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            xid = end.xid,
            staged_bytes = s.bytes,
            "streamed transaction committed; passing it on from its staging file"
        );
        Ok(Replay {
            started: std::time::Instant::now(),
            path: Some(s.path),
            reader: Some(BufReader::with_capacity(BUFFER, file)),
            left: s.bytes,
            aborted: s.aborted,
            decoder: Decoder::in_stream_block(),
            end,
            begun: false,
            before: None,
            dir: self.dir.clone(),
            stats: Arc::clone(&self.stats),
        })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        for s in self.open.values() {
            // The files are useless once the connection is gone (PostgreSQL streams the
            // transactions again).
            remove_in_background(s.path.clone());
            self.stats
                .spill_local_bytes
                .fetch_sub(s.bytes, Ordering::Relaxed);
            self.stats.streamed_open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn spill_error(stats: &SourceStats, dir: &Path, what: &str, e: std::io::Error) -> PgError {
    stats.streaming_refused.store(true, Ordering::Relaxed);
    let fix = match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            " (give source.postgres.spill_dir room, or point it at a larger disk, to keep streaming)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (point source.postgres.spill_dir at a directory of Sluice's own user)"
        }
        _ => "",
    };
    PgError::Spill {
        dir: dir.display().to_string(),
        reason: format!("cannot {what}: {e}{fix}"),
    }
}

/// A committed streamed transaction being passed on: Begin, its staged changes (in
/// batches, so the bounded queue to the sink applies), Commit.
pub struct Replay {
    path: Option<PathBuf>,
    reader: Option<BufReader<File>>,
    /// Staged bytes not read back yet: the file must hold exactly what was written.
    left: u64,
    aborted: HashSet<u32>,
    decoder: Decoder,
    end: StreamEnd,
    begun: bool,
    /// The relation cache and arrival counter before the replay, restored after it.
    before: Option<(super::decode::Relations, u64)>,
    started: std::time::Instant,
    dir: PathBuf,
    stats: Arc<SourceStats>,
}

impl Replay {
    fn empty(end: StreamEnd) -> Replay {
        Replay {
            path: None,
            reader: None,
            left: 0,
            aborted: HashSet::new(),
            decoder: Decoder::in_stream_block(),
            end,
            begun: false,
            before: None,
            started: std::time::Instant::now(),
            dir: PathBuf::new(),
            stats: Arc::default(),
        }
    }

    /// Decodes the next staged messages into `out`, up to a batch. Returns true when the
    /// transaction is complete (its Commit included).
    pub async fn next(
        &mut self,
        ctx: &Context<'_>,
        st: &mut State,
        out: &mut EventBatch,
    ) -> Result<bool, PgError> {
        let e = self.end;
        if !self.begun {
            self.begun = true;
            self.before = Some((st.relations(), st.arrival));
            let begin = PgOutput::Begin {
                final_lsn: e.commit_lsn,
                ts: e.ts,
                xid: e.xid,
            };
            decode::on_message(ctx, st, begin, out).await?;
        }
        while out.len() < MAX_EVENT_BATCH {
            let Some((subxid, lsn, arrival, m)) = self.read_message().await? else {
                break;
            };
            // Relation and type descriptions always apply: pgoutput counts them as sent
            // for the whole transaction, whichever subtransaction carried them.
            let shape = matches!(m, PgOutput::Relation(_) | PgOutput::Type { .. });
            if !shape && self.aborted.contains(&subxid) {
                continue;
            }
            st.record_lsn = lsn;
            st.arrival = arrival;
            decode::on_message(ctx, st, m, out).await?;
        }
        if self.reader.is_some() {
            return Ok(false);
        }
        if let Some(path) = self.path.take() {
            remove_in_background(path);
        }
        let commit = PgOutput::Commit {
            flags: e.flags,
            commit_lsn: e.commit_lsn,
            end_lsn: e.end_lsn,
            ts: e.ts,
        };
        if let Some((relations, arrival)) = self.before.take() {
            st.keep_newer_relations(relations);
            st.arrival = arrival;
        }
        decode::on_message(ctx, st, commit, out).await?;
        tracing::info!(
            xid = e.xid,
            secs = self.started.elapsed().as_secs_f64(),
            "streamed transaction passed on"
        );
        Ok(true)
    }
}

impl Replay {
    /// The next staged message with its subtransaction and WAL position; `None` once
    /// everything written was read (the file must hold exactly that).
    async fn read_message(&mut self) -> Result<Option<(u32, Lsn, u64, PgOutput)>, PgError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        if self.left == 0 {
            self.reader = None;
            return Ok(None);
        }
        let xid = self.end.xid;
        let damaged = |stats: &SourceStats, dir: &Path, why: String| {
            let why = format!("the staged file of transaction {xid} is damaged ({why})");
            spill_error(stats, dir, "read back", std::io::Error::other(why))
        };
        let mut header = [0u8; HEADER];
        reader
            .read_exact(&mut header)
            .await
            .map_err(|err| damaged(&self.stats, &self.dir, err.to_string()))?;
        let len = u32::from_be_bytes(header[..4].try_into().unwrap_or_default()) as usize;
        let subxid = u32::from_be_bytes(header[4..8].try_into().unwrap_or_default());
        let lsn = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
        let arrival = u64::from_be_bytes(header[16..].try_into().unwrap_or_default());
        let size = (HEADER + len) as u64;
        if size > self.left {
            let why = "a message runs past what was written".to_string();
            return Err(damaged(&self.stats, &self.dir, why));
        }
        self.left -= size;
        // Read straight into the bytes the decoded message refers to (one copy).
        let mut payload = BytesMut::zeroed(len);
        reader
            .read_exact(&mut payload)
            .await
            .map_err(|err| damaged(&self.stats, &self.dir, err.to_string()))?;
        // These bytes decoded when they arrived: failing now means the file changed.
        let m = self
            .decoder
            .decode(&payload.freeze())
            .map_err(|d| damaged(&self.stats, &self.dir, d.to_string()))?;
        Ok(Some((subxid, Lsn(lsn), arrival, m)))
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            remove_in_background(path);
        }
    }
}

/// Deletes a staging file off the async threads when a runtime runs (unlinking a large
/// file takes a while), else at once.
fn remove_in_background(path: PathBuf) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(move || std::fs::remove_file(path));
        }
        Err(_) => {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commit of transaction `xid` at LSN 20 (ending at 21).
    fn end_of(xid: u32) -> StreamEnd {
        StreamEnd {
            xid,
            flags: 0,
            commit_lsn: Lsn(20),
            end_lsn: Lsn(21),
            ts: 0,
        }
    }

    fn stats() -> Arc<SourceStats> {
        Arc::new(SourceStats::default())
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Files are deleted off the async threads: waits (up to 5 s) for the listing.
    async fn settled(dir: &Path, want: &[&str]) {
        for _ in 0..500 {
            if files(dir) == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(files(dir), want);
    }

    #[tokio::test]
    async fn stale_files_go_and_staging_follows_start_abort_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("7.spill"), b"left by a crash").unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"not ours").unwrap();
        let stats = stats();
        let mut spill = Spill::open(dir.path(), 1 << 20, Arc::clone(&stats))
            .await
            .unwrap();
        assert_eq!(files(dir.path()), ["keep.txt", "lock"]);
        // A second instance in the same directory is refused (it would delete live files).
        let e = Spill::open(dir.path(), 1 << 20, stats.clone())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("another Sluice instance"), "{e}");

        // A continuation of a transaction never started here is a protocol error.
        assert!(spill.start(5, false).await.is_err());
        spill.start(5, true).await.unwrap();
        spill.append(5, Lsn(10), 10, b"I-one").await.unwrap();
        spill.append(6, Lsn(11), 11, b"I-two").await.unwrap();
        spill.stop().await.unwrap();
        assert!(
            spill.append(5, Lsn(12), 12, b"x").await.is_err(),
            "outside a block"
        );
        spill.start(8, true).await.unwrap();
        spill.append(8, Lsn(13), 13, b"I-three").await.unwrap();
        spill.stop().await.unwrap();
        // 5 goes on in a later block, appended to its file.
        spill.start(5, false).await.unwrap();
        spill.append(5, Lsn(14), 14, b"I-four").await.unwrap();
        spill.stop().await.unwrap();
        assert_eq!(stats.streamed_open.load(Ordering::Relaxed), 2);
        let staged = 4 * HEADER as u64 + 5 + 5 + 7 + 6;
        assert_eq!(stats.spill_local_bytes.load(Ordering::Relaxed), staged);
        assert_eq!(
            files(dir.path()),
            ["5.spill", "8.spill", "keep.txt", "lock"]
        );

        // A subtransaction's abort keeps the file; the whole transaction's removes it.
        spill.abort(5, 6).await.unwrap();
        assert_eq!(spill.open[&5].aborted, HashSet::from([6]));
        spill.abort(8, 8).await.unwrap();
        settled(dir.path(), &["5.spill", "keep.txt", "lock"]).await;
        assert_eq!(stats.streamed_aborts.load(Ordering::Relaxed), 1);

        let end = end_of(5);
        let replay = spill.commit(end).await.unwrap();
        assert_eq!(stats.spill_local_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(stats.streamed_open.load(Ordering::Relaxed), 0);
        assert_eq!(
            std::fs::metadata(dir.path().join("5.spill")).unwrap().len(),
            3 * HEADER as u64 + 16,
            "its three messages written, with their headers"
        );
        drop(replay);
        settled(dir.path(), &["keep.txt", "lock"]).await; // a replay removes its file
        drop(spill);
        Spill::open(dir.path(), 1 << 20, stats)
            .await
            .expect("the lock went with the first");
    }

    #[tokio::test]
    async fn staging_beyond_the_limit_turns_streaming_off_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let stats = stats();
        let mut spill = Spill::open(dir.path(), 100, Arc::clone(&stats))
            .await
            .unwrap();
        spill.start(1, true).await.unwrap();
        spill.append(1, Lsn(1), 1, &[0; 60]).await.unwrap();
        let e = spill.append(1, Lsn(2), 2, &[0; 60]).await.unwrap_err();
        assert!(matches!(e, PgError::Spill { .. }), "{e}");
        assert!(e.to_string().contains("spill_max_mb"), "{e}");
        assert_eq!(
            sluice_core::Classify::class(&e),
            sluice_core::ErrorClass::Transient,
            "reconnects (with streaming off)"
        );
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
        drop(spill);
        settled(dir.path(), &["lock"]).await;
        assert_eq!(stats.spill_local_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(stats.streamed_open.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_directory_that_cannot_be_made_turns_streaming_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let stats = stats();
        let e = Spill::open(&file.join("spill"), 1 << 20, Arc::clone(&stats))
            .await
            .err()
            .expect("a path under a file");
        assert!(e.to_string().contains("create the directory"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
    }

    /// A streamed Insert of one text column: 'I', xid, relation, 'N', 1 column.
    fn insert(xid: u32, text: &str) -> Vec<u8> {
        let mut m = vec![b'I'];
        m.extend(xid.to_be_bytes());
        m.extend(16384u32.to_be_bytes());
        m.push(b'N');
        m.extend(1u16.to_be_bytes());
        m.push(b't');
        m.extend((text.len() as u32).to_be_bytes());
        m.extend(text.as_bytes());
        m
    }

    async fn staged(dir: &Path, stats: &Arc<SourceStats>) -> (Spill, StreamEnd) {
        let mut spill = Spill::open(dir, 1 << 20, Arc::clone(stats)).await.unwrap();
        spill.start(5, true).await.unwrap();
        spill.append(5, Lsn(10), 10, &insert(5, "a")).await.unwrap();
        spill
            .append(6, Lsn(11), 11, &insert(6, "bb"))
            .await
            .unwrap();
        spill.stop().await.unwrap();
        let end = end_of(5);
        (spill, end)
    }

    #[tokio::test]
    async fn a_replay_reads_back_what_was_staged_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let stats = stats();
        let (mut spill, end) = staged(dir.path(), &stats).await;
        let mut replay = spill.commit(end).await.unwrap();
        let (sub, lsn, arrival, m) = replay.read_message().await.unwrap().unwrap();
        assert_eq!((sub, lsn, arrival), (5, Lsn(10), 10));
        assert!(matches!(m, PgOutput::Insert { xid: Some(5), .. }), "{m:?}");
        let (sub, lsn, arrival, _) = replay.read_message().await.unwrap().unwrap();
        assert_eq!((sub, lsn, arrival), (6, Lsn(11), 11));
        assert!(replay.read_message().await.unwrap().is_none());
        assert!(!stats.streaming_refused.load(Ordering::Relaxed));
        drop((replay, spill));

        // Cut short: the replay notices, and streaming is turned off.
        let (mut spill, end) = staged(dir.path(), &stats).await;
        let file = dir.path().join("5.spill");
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let mut replay = spill.commit(end).await.unwrap();
        replay.read_message().await.unwrap();
        let e = replay.read_message().await.unwrap_err();
        assert!(matches!(e, PgError::Spill { .. }), "{e}");
        assert!(e.to_string().contains("damaged"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
        drop((replay, spill));

        // Overwritten bytes that no longer decode.
        let stats = self::stats();
        let (mut spill, end) = staged(dir.path(), &stats).await;
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[HEADER] = b'?';
        std::fs::write(&file, bytes).unwrap();
        let mut replay = spill.commit(end).await.unwrap();
        let e = replay.read_message().await.unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_savepoint_rolled_back_after_a_streamed_logical_message_turns_streaming_off() {
        let dir = tempfile::tempdir().unwrap();
        let stats = stats();
        let mut spill = Spill::open(dir.path(), 1 << 20, Arc::clone(&stats))
            .await
            .unwrap();
        spill.start(5, true).await.unwrap();
        assert!(spill.start(5, true).await.is_err(), "first twice");
        spill.append(6, Lsn(10), 10, &insert(6, "a")).await.unwrap();
        // Rolled back before any message: the subtransaction is known, nothing fails.
        spill.abort(5, 6).await.unwrap();
        // 'M', xid, flags, lsn, prefix, content: tagged with the top-level transaction.
        let mut message = vec![b'M'];
        message.extend(5u32.to_be_bytes());
        message.push(1);
        message.extend(11u64.to_be_bytes());
        message.extend(b"audit\0");
        message.extend(1u32.to_be_bytes());
        message.push(b'x');
        spill.append(5, Lsn(11), 11, &message).await.unwrap();
        assert!(!stats.streaming_refused.load(Ordering::Relaxed));
        let e = spill.abort(5, 7).await.unwrap_err();
        assert!(matches!(e, PgError::Spill { .. }), "{e}");
        assert!(e.to_string().contains("savepoint"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn rolled_back_savepoints_are_remembered_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let stats = stats();
        let mut spill = Spill::open(dir.path(), 1 << 20, Arc::clone(&stats))
            .await
            .unwrap();
        spill.start(1, true).await.unwrap();
        spill.stop().await.unwrap();
        for sub in 0..MAX_ABORTED_SUBTRANSACTIONS as u32 {
            spill.abort(1, 1_000_000 + sub).await.unwrap();
        }
        let e = spill.abort(1, 5).await.unwrap_err();
        assert!(e.to_string().contains("savepoints"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn the_directory_is_made_private_and_a_symbolic_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = dir.path().join("spill");
        std::fs::create_dir(&spill_dir).unwrap();
        std::fs::set_permissions(&spill_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let spill = Spill::open(&spill_dir, 1 << 20, stats()).await.unwrap();
        let mode = std::fs::metadata(&spill_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(spill);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&spill_dir, &link).unwrap();
        let stats = stats();
        let e = Spill::open(&link, 1 << 20, Arc::clone(&stats))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(stats.streaming_refused.load(Ordering::Relaxed));
    }
}
