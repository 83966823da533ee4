//! The typed shape of the configuration file. Defaults live here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Required by `sluice run`.
    pub source: Option<SourceSection>,
    /// Required by `sluice run`.
    pub sink: Option<SinkSection>,
    #[serde(default)]
    pub schema_registry: RegistrySection,
    #[serde(default)]
    pub admin: AdminSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub postgres: PostgresSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub url: String,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_name")]
    pub slot: String,
    #[serde(default = "default_name")]
    pub publication: String,
    pub tables: Vec<String>,
    #[serde(default)]
    pub snapshot: SnapshotSetting,
    /// Connections reading the snapshot at once (each inside the same exported snapshot;
    /// one more plans the reads); default: half the CPUs, 1 to 4.
    #[serde(default = "default_snapshot_parallelism")]
    pub snapshot_parallelism: usize,
    /// Rows per key range a large table is split into for parallel reading (0: never
    /// split); a range read ahead is buffered, so memory grows with both settings.
    #[serde(default = "default_snapshot_chunk_rows")]
    pub snapshot_chunk_rows: u64,
    /// Seconds between standby status updates when idle.
    #[serde(default = "default_status_interval")]
    pub status_interval_secs: u64,
    /// Unchanged TOASTed values: re-read by key, or an explicit placeholder.
    #[serde(default)]
    pub toast: ToastSetting,
    /// Seconds between pg_logical_emit_message heartbeats (0 disables).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_secs: u64,
    /// How long to wait for a slot another instance holds before stopping (exit 75).
    #[serde(default = "default_slot_busy")]
    pub slot_busy_timeout_secs: u64,
    /// TLS to PostgreSQL (libpq's sslmode semantics).
    pub tls: Option<PostgresTls>,
    /// Logical decoding messages (`pg_logical_emit_message`) passed on as events.
    #[serde(default)]
    pub messages: MessagesSection,
    /// Capture DDL with an event trigger, so a table change is checked and registered in
    /// stream order even when no row follows it.
    #[serde(default)]
    pub ddl_capture: bool,
    /// Tables without a primary key or replica identity: refuse, or stream them with a
    /// null event key.
    #[serde(default)]
    pub keyless_tables: KeylessTablesSetting,
    /// Receive large transactions while they run (pgoutput streaming), staged on local
    /// disk until they commit; false: PostgreSQL spills them and sends them after commit.
    #[serde(default = "default_true")]
    pub streaming: bool,
    /// Where streamed transactions are staged (default: <temp dir>/sluice-spill-<database>-<slot>).
    pub spill_dir: Option<PathBuf>,
    /// Most MiB staged at once; beyond, Sluice reconnects with streaming off.
    #[serde(default = "default_spill_max_mb")]
    pub spill_max_mb: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeylessTablesSetting {
    #[default]
    Refuse,
    NullKey,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecuritySection {
    /// plaintext | ssl | sasl_plaintext | sasl_ssl (required when sasl or tls is set).
    pub protocol: Option<String>,
    pub sasl: Option<KafkaSasl>,
    pub tls: Option<KafkaTls>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSasl {
    /// PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    pub mechanism: String,
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// Never shows an inline password.
impl std::fmt::Debug for KafkaSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTls {
    /// PEM CA that signed the brokers' certificates (default: the public web roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesSection {
    #[serde(default)]
    pub enabled: bool,
    /// Only these prefixes (empty: all).
    #[serde(default)]
    pub prefixes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresTls {
    /// disable | prefer | require | verify-ca | verify-full
    #[serde(default = "default_tls_mode")]
    pub mode: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

fn default_tls_mode() -> String {
    "prefer".into()
}

fn default_slot_busy() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ToastSetting {
    #[default]
    Reselect,
    Placeholder,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotSetting {
    #[default]
    Initial,
    Never,
    InitialOnly,
    WhenNeeded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    pub kafka: KafkaSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub bootstrap_servers: String,
    pub topic_prefix: String,
    #[serde(default)]
    pub properties: BTreeMap<String, serde_yaml::Value>,
    /// Partitions of topics Sluice creates.
    #[serde(default = "default_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics Sluice creates.
    #[serde(default = "default_partitions")]
    pub topic_replication_factor: i32,
    /// Emit a tombstone (null value) after each delete, for log compaction.
    #[serde(default = "default_true")]
    pub tombstones: bool,
    /// The value's shape: Debezium's envelope, or the flat row.
    #[serde(default)]
    pub envelope: EnvelopeSetting,
    /// Fill the envelope's `transaction` block (id, total_order, data_collection_order).
    #[serde(default)]
    pub transaction_metadata: bool,
    /// TLS and SASL to the brokers (for every Kafka client Sluice runs).
    #[serde(default)]
    pub security: KafkaSecuritySection,
    /// Registry subject names: topic (`<topic>-key|value`), record, topic_record.
    #[serde(default)]
    pub subject_name_strategy: SubjectStrategySetting,
    /// numeric and money columns: precise (Avro decimals), double, or string.
    #[serde(default)]
    pub decimal_handling: DecimalHandlingSetting,
    /// date/time/timestamp columns: adaptive_time_microseconds, adaptive or connect.
    #[serde(default)]
    pub time_precision: TimePrecisionSetting,
    /// Compacted topic holding the committed source position (key: the slot name).
    #[serde(default = "default_offsets_topic")]
    pub offsets_topic: String,
    /// Kafka transactional.id; default `sluice-<slot>`. One running instance per id.
    pub transactional_id: Option<String>,
    #[serde(default = "default_txn_timeout")]
    pub transaction_timeout_secs: u64,
    #[serde(default)]
    pub batch: BatchSection,
}

/// Bounds of one Kafka transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSection {
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
}

impl Default for BatchSection {
    fn default() -> Self {
        BatchSection {
            max_events: default_max_events(),
            max_bytes: default_max_bytes(),
            linger_ms: default_linger(),
        }
    }
}

fn default_offsets_topic() -> String {
    "sluice.offsets".into()
}
fn default_txn_timeout() -> u64 {
    60
}
fn default_max_events() -> usize {
    10_000
}
fn default_max_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_linger() -> u64 {
    10
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistryMode {
    #[default]
    Bundled,
    External,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    #[serde(default)]
    pub mode: RegistryMode,
    /// Bundled: where the REST API listens.
    #[serde(default = "default_registry_listen")]
    pub listen: SocketAddr,
    /// External: the registry's base URL.
    pub url: Option<String>,
    /// Bundled: where schemas are stored (relative to the config file's directory).
    #[serde(default = "default_registry_dir")]
    pub data_dir: PathBuf,
    /// Bundled: `kafka` (a compacted topic; default when sink.kafka is configured) or
    /// `directory` (data_dir).
    pub storage: Option<RegistryStorageSetting>,
    /// Bundled, Kafka storage: the compacted topic holding the registry.
    #[serde(default = "default_registry_topic")]
    pub topic: String,
    /// When the registry refuses a table's new schema.
    #[serde(default)]
    pub on_incompatible: OnIncompatibleSetting,
    /// Bundled: users allowed in (`users_file`); external: the credentials to send
    /// (`username`, `password_file`).
    pub basic_auth: Option<RegistryBasicAuth>,
    /// Bundled: serve HTTPS (`cert_file`, `key_file`); external: trust `ca_file`.
    pub tls: Option<RegistryTls>,
}

/// HTTP basic authentication of the registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryBasicAuth {
    /// Bundled: file of `user:password` lines; the pipeline's own client uses the first.
    pub users_file: Option<PathBuf>,
    /// External: the user name sent.
    pub username: Option<String>,
    /// External: file holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
}

/// TLS of the registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTls {
    /// Bundled: PEM certificate chain (leaf first) of the listener.
    pub cert_file: Option<PathBuf>,
    /// Bundled: PEM private key of the listener.
    pub key_file: Option<PathBuf>,
    /// External: PEM CA certificate(s) to trust besides the built-in roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStorageSetting {
    Kafka,
    Directory,
}

fn default_registry_topic() -> String {
    "_sluice_schemas".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecisionSetting {
    #[default]
    AdaptiveTimeMicroseconds,
    Adaptive,
    Connect,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DecimalHandlingSetting {
    #[default]
    Precise,
    Double,
    String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategySetting {
    #[default]
    Topic,
    Record,
    TopicRecord,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeSetting {
    #[default]
    Debezium,
    Flat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnIncompatibleSetting {
    #[default]
    BlockTable,
    Fail,
    SkipTable,
    RegisterAnyway,
}

impl Default for RegistrySection {
    fn default() -> Self {
        RegistrySection {
            mode: RegistryMode::Bundled,
            listen: default_registry_listen(),
            url: None,
            data_dir: default_registry_dir(),
            storage: None,
            topic: default_registry_topic(),
            on_incompatible: OnIncompatibleSetting::default(),
            basic_auth: None,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: default_admin_listen(),
        }
    }
}

fn default_name() -> String {
    "sluice".into()
}
fn default_snapshot_parallelism() -> usize {
    sluice_postgres::default_snapshot_parallelism()
}
fn default_spill_max_mb() -> u64 {
    2048
}
fn default_snapshot_chunk_rows() -> u64 {
    20_000
}
fn default_status_interval() -> u64 {
    10
}
fn default_heartbeat() -> u64 {
    60
}
fn default_partitions() -> i32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_registry_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
fn default_registry_dir() -> PathBuf {
    PathBuf::from("sluice-data/registry")
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9187))
}
