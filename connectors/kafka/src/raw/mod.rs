//! A minimal Kafka protocol client for reading a partition's raw record batches,
//! control markers included (Metadata v4, ListOffsets v1, Fetch v4).
//!
//! librdkafka does not expose control records, and relies on the broker to filter
//! aborted transactions; the offsets topic is read with this client so that
//! read_committed holds whatever the broker does.

pub mod batch;
pub mod sasl;
pub mod wire;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::security::{Mechanism, Sasl, Security};

pub use batch::{Batch, ReadCommitted, Record};
use wire::{Reader, WireError, Writer};

const API_FETCH: i16 = 1;
const API_LIST_OFFSETS: i16 = 2;
const API_METADATA: i16 = 3;
const API_SASL_HANDSHAKE: i16 = 17;
const API_SASL_AUTHENTICATE: i16 = 36;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("cannot reach Kafka broker {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka connection to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka broker {addr} did not answer within {IO_TIMEOUT:?}")]
    Timeout { addr: String },
    #[error("unexpected Kafka response from {addr}: {source}")]
    Wire { addr: String, source: WireError },
    #[error("Kafka error code {code} for {topic}/{partition} ({what})")]
    Broker {
        topic: String,
        partition: i32,
        code: i16,
        what: &'static str,
    },
    #[error("no leader known for {topic}/{partition}")]
    NoLeader { topic: String, partition: i32 },
    #[error("TLS to Kafka broker {addr} failed: {detail}; check sink.kafka.security.tls (ca_file: the CA that signed the broker's certificate, whose names must include the host Sluice connects to)")]
    Tls { addr: String, detail: String },
    #[error("SASL authentication to Kafka broker {addr} failed: {detail}; check sink.kafka.security.sasl (mechanism, username, password_file)")]
    Auth { addr: String, detail: String },
}

impl RawError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn is_unknown_topic(&self) -> bool {
        matches!(self, RawError::Broker { code: 3, .. })
    }
}

/// What Metadata says of one topic.
#[derive(Default)]
struct Metadata {
    /// (node id, host:port)
    brokers: Vec<(i32, String)>,
    /// (partition, error code, leader node id)
    partitions: Vec<(i32, i16, i32)>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One broker connection, over TLS and authenticated as `security` says.
pub struct Conn {
    addr: String,
    stream: Box<dyn Io>,
    correlation: i32,
}

impl Conn {
    pub async fn connect(addr: &str, security: &Security) -> Result<Conn, RawError> {
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| RawError::Timeout { addr: addr.into() })?
            .map_err(|source| RawError::Connect {
                addr: addr.into(),
                source,
            })?;
        let stream: Box<dyn Io> = if security.protocol.tls() {
            let tls = |detail: String| RawError::Tls {
                addr: addr.into(),
                detail,
            };
            let config = security.tls_config().map_err(tls)?;
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| tls(format!("{host:?} is not a server name: {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let handshake = tokio::time::timeout(IO_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| RawError::Timeout { addr: addr.into() })?;
            Box::new(handshake.map_err(|e| tls(e.to_string()))?)
        } else {
            Box::new(tcp)
        };
        let mut conn = Conn {
            addr: addr.into(),
            stream,
            correlation: 0,
        };
        if security.protocol.sasl() {
            let sasl = security
                .sasl
                .as_ref()
                .ok_or_else(|| conn.auth("no SASL credentials are configured".into()))?;
            conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    fn auth(&self, detail: String) -> RawError {
        RawError::Auth {
            addr: self.addr.clone(),
            detail,
        }
    }

    /// SaslHandshake v1, then the mechanism's SaslAuthenticate v1 exchange.
    async fn authenticate(&mut self, sasl: &Sasl) -> Result<(), RawError> {
        let mut body = Writer::default();
        body.string(sasl.mechanism.name());
        let resp = self.call(API_SASL_HANDSHAKE, 1, &body.0).await?;
        let parse = || -> wire::Result<(i16, Vec<String>)> {
            let mut r = Reader::new(&resp);
            let err = r.i16()?;
            let mut offered = Vec::new();
            for _ in 0..r.array_len()? {
                offered.push(r.string()?);
            }
            Ok((err, offered))
        };
        let (err, offered) = parse().map_err(|e| self.wire(e))?;
        if err != 0 {
            return Err(self.auth(format!(
                "the broker does not offer {} (it offers {}; error code {err})",
                sasl.mechanism.name(),
                offered.join(", ")
            )));
        }
        match sasl.mechanism {
            Mechanism::Plain => {
                self.sasl_authenticate(&sasl::plain(&sasl.username, &sasl.password))
                    .await?;
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let mut scram = sasl::Scram::start(sasl.mechanism, &sasl.username, &sasl.password);
                let first = self
                    .sasl_authenticate(scram.client_first().as_bytes())
                    .await?;
                let answer = scram
                    .client_final(&String::from_utf8_lossy(&first))
                    .map_err(|e| self.auth(e))?;
                let last = self.sasl_authenticate(answer.as_bytes()).await?;
                scram
                    .verify(&String::from_utf8_lossy(&last))
                    .map_err(|e| self.auth(e))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate v1 round: the broker's answer bytes.
    async fn sasl_authenticate(&mut self, bytes: &[u8]) -> Result<Vec<u8>, RawError> {
        let mut body = Writer::default();
        body.i32(bytes.len() as i32);
        body.0.extend_from_slice(bytes);
        let resp = self.call(API_SASL_AUTHENTICATE, 1, &body.0).await?;
        let parse = || -> wire::Result<(i16, Option<String>, Vec<u8>)> {
            let mut r = Reader::new(&resp);
            let err = r.i16()?;
            let message = r.nullable_string()?;
            let answer = r.bytes32()?.unwrap_or_default().to_vec();
            Ok((err, message, answer))
        };
        let (err, message, answer) = parse().map_err(|e| self.wire(e))?;
        if err != 0 {
            return Err(self.auth(format!(
                "{} (error code {err})",
                message.unwrap_or_else(|| "refused".into())
            )));
        }
        Ok(answer)
    }

    async fn call(&mut self, api: i16, version: i16, body: &[u8]) -> Result<Vec<u8>, RawError> {
        self.correlation += 1;
        let mut req = Writer::default();
        req.i16(api)
            .i16(version)
            .i32(self.correlation)
            .string("sluice");
        req.0.extend_from_slice(body);
        let mut frame = (req.0.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&req.0);
        let addr = self.addr.clone();
        let io = |source| RawError::Io {
            addr: addr.clone(),
            source,
        };
        let fut = async {
            self.stream.write_all(&frame).await.map_err(io)?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.map_err(io)?;
            let len = i32::from_be_bytes(len);
            if !(4..=256 * 1024 * 1024).contains(&len) {
                return Err(RawError::Wire {
                    addr: addr.clone(),
                    source: WireError(format!("response length {len}")),
                });
            }
            let mut resp = vec![0u8; len as usize];
            self.stream.read_exact(&mut resp).await.map_err(io)?;
            Ok(resp)
        };
        let resp = tokio::time::timeout(IO_TIMEOUT, fut)
            .await
            .map_err(|_| RawError::Timeout { addr: addr.clone() })??;
        let corr = i32::from_be_bytes(resp[0..4].try_into().expect("4 bytes"));
        if corr != self.correlation {
            return Err(RawError::Wire {
                addr,
                source: WireError(format!(
                    "correlation id {corr}, expected {}",
                    self.correlation
                )),
            });
        }
        Ok(resp[4..].to_vec())
    }

    fn wire(&self, source: WireError) -> RawError {
        RawError::Wire {
            addr: self.addr.clone(),
            source,
        }
    }

    /// `topic`'s metadata (Metadata v4: a reader must not create the topic, which v1
    /// requests do on brokers that auto-create, with the broker's default partition
    /// count). An unknown topic is [`RawError::Broker`] with code 3.
    async fn metadata(&mut self, topic: &str) -> Result<Metadata, RawError> {
        let mut body = Writer::default();
        body.i32(1).string(topic).i8(0);
        let resp = self.call(API_METADATA, 4, &body.0).await?;
        let parse = || -> wire::Result<(i16, Metadata)> {
            let mut r = Reader::new(&resp);
            let _throttle = r.i32()?;
            let mut meta = Metadata::default();
            for _ in 0..r.array_len()? {
                let id = r.i32()?;
                let host = r.string()?;
                let port = r.i32()?;
                let _rack = r.string()?;
                meta.brokers.push((id, format!("{host}:{port}")));
            }
            let _cluster_id = r.string()?;
            let _controller = r.i32()?;
            // Not in the answer at all: unknown.
            let mut topic_err = 3;
            for _ in 0..r.array_len()? {
                let err = r.i16()?;
                let name = r.string()?;
                let _internal = r.i8()?;
                for _ in 0..r.array_len()? {
                    let perr = r.i16()?;
                    let idx = r.i32()?;
                    let leader = r.i32()?;
                    for _ in 0..r.array_len()? {
                        r.i32()?;
                    }
                    for _ in 0..r.array_len()? {
                        r.i32()?;
                    }
                    if name == topic {
                        meta.partitions.push((idx, perr, leader));
                    }
                }
                if name == topic {
                    topic_err = err;
                }
            }
            Ok((topic_err, meta))
        };
        let (err, meta) = parse().map_err(|e| self.wire(e))?;
        if err != 0 {
            return Err(RawError::Broker {
                topic: topic.into(),
                partition: -1,
                code: err,
                what: "metadata",
            });
        }
        Ok(meta)
    }

    /// The leader's address of `topic`/`partition`.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<String, RawError> {
        let meta = self.metadata(topic).await?;
        let broker_err = |code| RawError::Broker {
            topic: topic.into(),
            partition,
            code,
            what: "metadata",
        };
        let &(_, perr, leader) = meta
            .partitions
            .iter()
            .find(|p| p.0 == partition)
            .ok_or_else(|| broker_err(3))?;
        if perr != 0 {
            return Err(broker_err(perr));
        }
        meta.brokers
            .into_iter()
            .find(|(id, _)| *id == leader)
            .map(|(_, a)| a)
            .ok_or(RawError::NoLeader {
                topic: topic.into(),
                partition,
            })
    }

    /// The partition ids of `topic`.
    pub async fn partitions(&mut self, topic: &str) -> Result<Vec<i32>, RawError> {
        Ok(self
            .metadata(topic)
            .await?
            .partitions
            .iter()
            .map(|p| p.0)
            .collect())
    }

    /// (earliest offset, high watermark) of a partition (ListOffsets v1).
    pub async fn offsets(&mut self, topic: &str, partition: i32) -> Result<(i64, i64), RawError> {
        let mut out = [0i64; 2];
        for (i, ts) in [-2i64, -1].into_iter().enumerate() {
            let mut body = Writer::default();
            body.i32(-1)
                .i32(1)
                .string(topic)
                .i32(1)
                .i32(partition)
                .i64(ts);
            let resp = self.call(API_LIST_OFFSETS, 1, &body.0).await?;
            let parse = || -> wire::Result<(i16, i64)> {
                let mut r = Reader::new(&resp);
                let mut res = (3, 0);
                for _ in 0..r.array_len()? {
                    let name = r.string()?;
                    for _ in 0..r.array_len()? {
                        let p = r.i32()?;
                        let err = r.i16()?;
                        let _ts = r.i64()?;
                        let off = r.i64()?;
                        if name == topic && p == partition {
                            res = (err, off);
                        }
                    }
                }
                Ok(res)
            };
            let (err, off) = parse().map_err(|e| self.wire(e))?;
            if err != 0 {
                return Err(RawError::Broker {
                    topic: topic.into(),
                    partition,
                    code: err,
                    what: "list offsets",
                });
            }
            out[i] = off;
        }
        Ok((out[0], out[1]))
    }

    /// Raw batches from `offset` and the partition's high watermark (Fetch v4,
    /// read_uncommitted: we apply the rules).
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(Vec<Batch>, i64), RawError> {
        let mut body = Writer::default();
        body.i32(-1) // replica
            .i32(500) // max wait
            .i32(1) // min bytes
            .i32(16 * 1024 * 1024)
            .i8(0) // read_uncommitted: every batch, control ones too
            .i32(1)
            .string(topic)
            .i32(1)
            .i32(partition)
            .i64(offset)
            .i32(16 * 1024 * 1024);
        let resp = self.call(API_FETCH, 4, &body.0).await?;
        let parse = || -> wire::Result<(i16, Vec<Batch>, i64)> {
            let mut r = Reader::new(&resp);
            let _throttle = r.i32()?;
            let mut res = (0, Vec::new(), -1);
            for _ in 0..r.array_len()? {
                let name = r.string()?;
                for _ in 0..r.array_len()? {
                    let p = r.i32()?;
                    let err = r.i16()?;
                    let hwm = r.i64()?;
                    let _lso = r.i64()?;
                    for _ in 0..r.array_len()? {
                        r.i64()?;
                        r.i64()?;
                    }
                    let records = r.bytes32()?;
                    if name == topic && p == partition {
                        res = (err, batch::parse_batches(records.unwrap_or_default())?, hwm);
                    }
                }
            }
            Ok(res)
        };
        let (err, batches, hwm) = parse().map_err(|e| self.wire(e))?;
        if err != 0 {
            return Err(RawError::Broker {
                topic: topic.into(),
                partition,
                code: err,
                what: "fetch",
            });
        }
        Ok((batches, hwm))
    }
}

/// Whether `topic` holds any record a read_committed consumer would see, in any
/// partition. Reads each partition from its start only until the first such record.
/// `false` for a topic that does not exist.
pub async fn has_committed_records(
    bootstrap: &str,
    security: &Security,
    topic: &str,
) -> Result<bool, RawError> {
    let first = bootstrap.split(',').next().unwrap_or(bootstrap).trim();
    let mut conn = Conn::connect(first, security).await?;
    let partitions = match conn.partitions(topic).await {
        Ok(p) => p,
        Err(e) if e.is_unknown_topic() => return Ok(false),
        Err(e) => return Err(e),
    };
    for p in partitions {
        let leader = conn.leader(topic, p).await?;
        let mut lc = Conn::connect(&leader, security).await?;
        if !scan(&mut lc, topic, p, true).await?.committed.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a whole partition from its start to the high watermark and returns what a
/// read_committed consumer may see, applying the transaction markers ourselves.
pub async fn read_committed(
    bootstrap: &str,
    security: &Security,
    topic: &str,
    partition: i32,
) -> Result<ReadCommitted, RawError> {
    let first = bootstrap.split(',').next().unwrap_or(bootstrap).trim();
    let mut conn = Conn::connect(first, security).await?;
    let leader = conn.leader(topic, partition).await?;
    if leader != first {
        conn = Conn::connect(&leader, security).await?;
    }
    scan(&mut conn, topic, partition, false).await
}

/// Reads a partition from its start to the high watermark (as of the first fetch),
/// applying read_committed; with `first_only`, stops at the first visible record.
async fn scan(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    first_only: bool,
) -> Result<ReadCommitted, RawError> {
    // The end: the higher of ListOffsets "latest" and the first fetch's high watermark
    // (tansu answers "latest" with the last-written batch's base offset + 1).
    let (mut offset, latest) = conn.offsets(topic, partition).await?;
    let mut rc = ReadCommitted::default();
    let mut end: Option<i64> = None;
    let mut empty_fetches = 0;
    loop {
        if end.is_some_and(|e| offset >= e) || (first_only && !rc.committed.is_empty()) {
            break;
        }
        let (batches, hwm) = conn.fetch(topic, partition, offset).await?;
        let end = *end.get_or_insert(hwm.max(latest));
        if offset >= end {
            break;
        }
        if batches.is_empty() {
            // A broker may raise the watermark just before the batch is readable.
            empty_fetches += 1;
            if empty_fetches > 20 {
                return Err(RawError::Wire {
                    addr: conn.addr.clone(),
                    source: WireError(format!(
                        "fetch at {offset} returned nothing below the high watermark {end}"
                    )),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        empty_fetches = 0;
        for b in batches {
            if b.last_offset < offset {
                continue;
            }
            offset = b.last_offset + 1;
            rc.push(b);
        }
    }
    Ok(rc)
}
