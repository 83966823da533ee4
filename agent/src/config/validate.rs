//! Semantic checks after deserialization, producing the connectors' settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sluice_core::TableName;
use sluice_kafka::KafkaConfig;
use sluice_postgres::{SnapshotMode, SourceConfig};
use sluice_schema_registry::{BasicAuth, ClientOptions, SecurityFile, TlsIdentity};

use super::{Config, ConfigError, RegistryMode, SnapshotSetting, ToastSetting};

/// A checked configuration, ready for the pipeline.
#[derive(Debug, Clone)]
pub struct Validated {
    pub on_incompatible: super::OnIncompatibleSetting,
    pub source: Option<SourceConfig>,
    pub slot_busy_timeout: Duration,
    pub kafka: Option<KafkaConfig>,
    pub transactional_id: String,
    pub batch: BatchLimits,
    pub topic_prefix: String,
    pub tombstones: bool,
    pub envelope: sluice_avro::Envelope,
    pub transaction_metadata: bool,
    pub subjects: sluice_avro::SubjectNameStrategy,
    pub decimal_handling: sluice_avro::DecimalHandling,
    pub time_precision: sluice_avro::TimePrecision,
    pub registry: RegistrySettings,
    pub admin_listen: SocketAddr,
}

/// Bounds of one Kafka transaction.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_events: usize,
    pub max_bytes: usize,
    pub linger: Duration,
}

#[derive(Debug, Clone)]
pub enum RegistrySettings {
    Bundled {
        listen: SocketAddr,
        data_dir: PathBuf,
        /// A compacted topic (the Kafka storage), or `None`: the directory `data_dir`.
        kafka_storage: Option<Box<sluice_schema_registry::KafkaStorageConfig>>,
        /// Users allowed in (`schema_registry.basic_auth.users_file`).
        basic_auth: Option<BasicAuth>,
        /// HTTPS identity (`schema_registry.tls.cert_file`, `key_file`).
        tls: Option<TlsIdentity>,
    },
    External {
        url: String,
        basic_auth: Option<Credentials>,
        /// Extra trusted roots (`schema_registry.tls.ca_file`), PEM.
        ca_pem: Option<Vec<u8>>,
    },
}

/// A user name and password (the password is not shown by `Debug`).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Validated {
    /// The sections `sluice run` needs, or an error naming the missing one.
    pub fn require_pipeline(&self) -> Result<(&SourceConfig, &KafkaConfig), ConfigError> {
        let source = self.source.as_ref().ok_or_else(|| {
            ConfigError::new(
                "source",
                "required key is missing (sluice run needs source.postgres)",
            )
        })?;
        let kafka = self.kafka.as_ref().ok_or_else(|| {
            ConfigError::new(
                "sink",
                "required key is missing (sluice run needs sink.kafka)",
            )
        })?;
        Ok((source, kafka))
    }

    /// How the pipeline's client connects to the registry: credentials and
    /// trusted roots (the bundled registry's own certificate when it serves TLS).
    pub fn registry_client_options(&self) -> ClientOptions {
        let (basic_auth, root_ca_pem) = match &self.registry {
            RegistrySettings::Bundled {
                basic_auth, tls, ..
            } => (
                basic_auth
                    .as_ref()
                    .and_then(|a| a.first_user())
                    .map(|(u, p)| (u.to_string(), p.to_string())),
                tls.as_ref().map(|t| t.cert_pem().to_vec()),
            ),
            RegistrySettings::External {
                basic_auth, ca_pem, ..
            } => (
                basic_auth
                    .as_ref()
                    .map(|c| (c.username.clone(), c.password.clone())),
                ca_pem.clone(),
            ),
        };
        ClientOptions {
            basic_auth,
            root_ca_pem,
            ..ClientOptions::default()
        }
    }

    /// The registry's base URL as the pipeline's client reaches it.
    pub fn registry_url(&self) -> String {
        match &self.registry {
            RegistrySettings::Bundled {
                listen,
                tls: Some(tls),
                ..
            } => {
                // Validation made sure the certificate fits one of these names.
                let host = tls
                    .local_host_name(listen.ip())
                    .unwrap_or_else(|| "127.0.0.1".into());
                format!("https://{host}:{}", listen.port())
            }
            RegistrySettings::Bundled { listen, .. } => {
                let host = if listen.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else if listen.is_ipv6() {
                    format!("[{}]", listen.ip())
                } else {
                    listen.ip().to_string()
                };
                format!("http://{host}:{}", listen.port())
            }
            RegistrySettings::External { url, .. } => url.clone(),
        }
    }
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Refuses keys of `schema_registry` that only an external registry takes.
fn only_for_external(keys: &[(&str, bool)]) -> Result<(), ConfigError> {
    for (k, set) in keys {
        if *set {
            return Err(ConfigError::new(
                format!("schema_registry.{k}"),
                "only for mode: external; the bundled registry reads its users from basic_auth.users_file",
            ));
        }
    }
    Ok(())
}

pub fn validate(cfg: Config, base_dir: &Path) -> Result<Validated, ConfigError> {
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        }
    };
    let source = match &cfg.source {
        None => None,
        Some(s) => {
            let pg = &s.postgres;
            let key = "source.postgres.url";
            let url = url::Url::parse(&pg.url).map_err(|e| {
                ConfigError::new(
                    key,
                    format!("not a valid URL ({e}); expected postgres://USER@HOST:PORT/DATABASE"),
                )
            })?;
            if url.scheme() != "postgres" && url.scheme() != "postgresql" {
                return Err(ConfigError::new(
                    key,
                    format!("scheme {:?} is not postgres://; expected postgres://USER@HOST:PORT/DATABASE", url.scheme()),
                ));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(ConfigError::new(
                    key,
                    "the URL has no host; expected postgres://USER@HOST:PORT/DATABASE",
                ));
            }
            if url.username().is_empty() {
                return Err(ConfigError::new(
                    key,
                    "the URL has no user; expected postgres://USER@HOST:PORT/DATABASE",
                ));
            }
            let mut pgcfg = tokio_postgres::Config::from_str(&pg.url)
                .map_err(|e| ConfigError::new(key, format!("not a valid PostgreSQL URL: {e}")))?;
            if pgcfg.get_dbname().is_none() {
                return Err(ConfigError::new(
                    key,
                    "the URL names no database; expected postgres://USER@HOST:PORT/DATABASE",
                ));
            }
            if let Some(pf) = &pg.password_file {
                let pw = read_secret("source.postgres.password_file", &resolve(pf))?;
                pgcfg.password(pw);
            }
            if pgcfg.get_application_name().is_none() {
                pgcfg.application_name("sluice");
            }
            if pg.tables.is_empty() {
                return Err(ConfigError::new(
                    "source.postgres.tables",
                    "list at least one table, e.g. [public.orders]",
                ));
            }
            let mut tables = Vec::new();
            for (i, t) in pg.tables.iter().enumerate() {
                let name = TableName::parse(t).ok_or_else(|| {
                    ConfigError::new(
                        format!("source.postgres.tables[{i}]"),
                        format!("{t:?} is not a table name; write schema.table"),
                    )
                })?;
                tables.push(name);
            }
            for (key, v) in [
                ("source.postgres.slot", &pg.slot),
                ("source.postgres.publication", &pg.publication),
            ] {
                if v.is_empty()
                    || v.len() > 63
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(ConfigError::new(
                        key,
                        format!("{v:?} is not a valid name: use 1 to 63 lower-case letters, digits and underscores"),
                    ));
                }
            }
            let tls = postgres_tls(pg.tls.as_ref(), &pgcfg, &resolve)?;
            if pg.status_interval_secs == 0 {
                return Err(ConfigError::new(
                    "source.postgres.status_interval_secs",
                    "must be at least 1",
                ));
            }
            if !(1..=64).contains(&pg.snapshot_parallelism) {
                return Err(ConfigError::new(
                    "source.postgres.snapshot_parallelism",
                    "must be between 1 and 64 (connections reading the snapshot at once)",
                ));
            }
            if pg.streaming && pg.spill_max_mb == 0 {
                return Err(ConfigError::new(
                    "source.postgres.spill_max_mb",
                    "must be at least 1 with streaming on (or set source.postgres.streaming: false)",
                ));
            }
            let spill_dir = pg.spill_dir.as_deref().map(resolve).unwrap_or_else(|| {
                let db = pgcfg.get_dbname().unwrap_or("postgres");
                let name: String = format!("sluice-spill-{db}-{}", pg.slot)
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                std::env::temp_dir().join(name)
            });
            Some(SourceConfig {
                pg: pgcfg,
                slot: pg.slot.clone(),
                publication: pg.publication.clone(),
                tables,
                snapshot: match pg.snapshot {
                    SnapshotSetting::Initial => SnapshotMode::Initial,
                    SnapshotSetting::Never => SnapshotMode::Never,
                    SnapshotSetting::InitialOnly => SnapshotMode::InitialOnly,
                    SnapshotSetting::WhenNeeded => SnapshotMode::WhenNeeded,
                },
                status_interval: Duration::from_secs(pg.status_interval_secs),
                toast: match pg.toast {
                    ToastSetting::Reselect => sluice_postgres::ToastMode::Reselect,
                    ToastSetting::Placeholder => sluice_postgres::ToastMode::Placeholder,
                },
                heartbeat_interval: (pg.heartbeat_interval_secs > 0)
                    .then(|| Duration::from_secs(pg.heartbeat_interval_secs)),
                tls,
                messages: sluice_postgres::MessageCapture {
                    enabled: pg.messages.enabled,
                    prefixes: pg.messages.prefixes.clone(),
                },
                ddl_capture: pg.ddl_capture,
                snapshot_parallelism: pg.snapshot_parallelism,
                snapshot_chunk_rows: pg.snapshot_chunk_rows,
                keep_special_numerics: false,
                keyless_tables: match pg.keyless_tables {
                    super::KeylessTablesSetting::Refuse => sluice_postgres::KeylessTables::Refuse,
                    super::KeylessTablesSetting::NullKey => sluice_postgres::KeylessTables::NullKey,
                },
                streaming: pg.streaming,
                spill_dir,
                spill_max_bytes: pg.spill_max_mb.saturating_mul(1 << 20),
            })
        }
    };
    let slot = cfg
        .source
        .as_ref()
        .map(|s| s.postgres.slot.clone())
        .unwrap_or_else(|| "sluice".into());
    let mut transactional_id = format!("sluice-{slot}");
    let mut batch = BatchLimits {
        max_events: 10_000,
        max_bytes: 8 << 20,
        linger: Duration::from_millis(10),
    };
    let (kafka, topic_prefix, tombstones) = match &cfg.sink {
        None => (None, String::new(), true),
        Some(s) => {
            let k = &s.kafka;
            if k.bootstrap_servers.trim().is_empty() {
                return Err(ConfigError::new(
                    "sink.kafka.bootstrap_servers",
                    "empty; expected HOST:PORT[,HOST:PORT]",
                ));
            }
            for server in k.bootstrap_servers.split(',') {
                let server = server.trim();
                let ok = server
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    return Err(ConfigError::new(
                        "sink.kafka.bootstrap_servers",
                        format!("{server:?} is not HOST:PORT"),
                    ));
                }
            }
            if k.topic_prefix.is_empty()
                || !k
                    .topic_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(ConfigError::new(
                    "sink.kafka.topic_prefix",
                    format!(
                        "{:?} is not a valid topic prefix: use letters, digits, '.', '_' and '-'",
                        k.topic_prefix
                    ),
                ));
            }
            if k.topic_partitions < 1 {
                return Err(ConfigError::new(
                    "sink.kafka.topic_partitions",
                    "must be at least 1",
                ));
            }
            if k.topic_replication_factor < 1 && k.topic_replication_factor != -1 {
                return Err(ConfigError::new(
                    "sink.kafka.topic_replication_factor",
                    "must be at least 1, or -1 for the broker default",
                ));
            }
            let mut properties = std::collections::BTreeMap::new();
            for (name, v) in &k.properties {
                // Sluice's own offsets reader connects too: who the client is and how
                // it authenticates belong in sink.kafka.security, which every client uses.
                if matches!(
                    name.as_str(),
                    "security.protocol"
                        | "sasl.mechanism"
                        | "sasl.mechanisms"
                        | "sasl.username"
                        | "sasl.password"
                        | "ssl.ca.location"
                        | "ssl.ca.pem"
                        | "ssl.certificate.location"
                        | "ssl.certificate.pem"
                        | "ssl.key.location"
                        | "ssl.key.pem"
                ) {
                    return Err(ConfigError::new(
                        format!("sink.kafka.properties.{name}"),
                        "set it under sink.kafka.security (protocol, sasl, tls): every Kafka client of Sluice uses that, its own offsets reader included",
                    ));
                }
                let text = match v {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(ConfigError::new(
                            format!("sink.kafka.properties.{name}"),
                            "must be a string, number or boolean",
                        ))
                    }
                };
                properties.insert(name.clone(), text);
            }
            for (key, bad) in [
                ("sink.kafka.offsets_topic", !valid_topic(&k.offsets_topic)),
                (
                    "sink.kafka.transaction_timeout_secs",
                    !(5..=900).contains(&k.transaction_timeout_secs),
                ),
                (
                    "sink.kafka.batch.max_events",
                    k.batch.max_events == 0 || k.batch.max_events > 1_000_000,
                ),
                ("sink.kafka.batch.max_bytes", k.batch.max_bytes < 1024),
                ("sink.kafka.batch.linger_ms", k.batch.linger_ms > 60_000),
            ] {
                if bad {
                    return Err(ConfigError::new(
                        key,
                        match key {
                            "sink.kafka.offsets_topic" => "not a valid topic name".to_string(),
                            "sink.kafka.transaction_timeout_secs" => {
                                "must be between 5 and 900 seconds".to_string()
                            }
                            "sink.kafka.batch.max_events" => {
                                "must be between 1 and 1000000".to_string()
                            }
                            "sink.kafka.batch.max_bytes" => "must be at least 1024".to_string(),
                            _ => "must be at most 60000".to_string(),
                        },
                    ));
                }
            }
            if let Some(id) = &k.transactional_id {
                if id.trim().is_empty() {
                    return Err(ConfigError::new(
                        "sink.kafka.transactional_id",
                        "must not be empty",
                    ));
                }
                transactional_id = id.clone();
            }
            if Duration::from_millis(k.batch.linger_ms)
                >= Duration::from_secs(k.transaction_timeout_secs)
            {
                return Err(ConfigError::new(
                    "sink.kafka.batch.linger_ms",
                    "must be shorter than sink.kafka.transaction_timeout_secs",
                ));
            }
            batch = BatchLimits {
                max_events: k.batch.max_events,
                max_bytes: k.batch.max_bytes,
                linger: Duration::from_millis(k.batch.linger_ms),
            };
            (
                Some(KafkaConfig {
                    bootstrap_servers: k.bootstrap_servers.clone(),
                    properties,
                    topic_partitions: k.topic_partitions,
                    topic_replication_factor: k.topic_replication_factor,
                    offsets_topic: k.offsets_topic.clone(),
                    transaction_timeout: Duration::from_secs(k.transaction_timeout_secs),
                    security: kafka_security(&k.security, &resolve)?,
                }),
                k.topic_prefix.clone(),
                k.tombstones,
            )
        }
    };
    let r = &cfg.schema_registry;
    let registry = match r.mode {
        RegistryMode::Bundled => {
            let basic_auth = match &r.basic_auth {
                None => None,
                Some(b) => {
                    only_for_external(&[
                        ("basic_auth.username", b.username.is_some()),
                        ("basic_auth.password_file", b.password_file.is_some()),
                    ])?;
                    let key = "schema_registry.basic_auth.users_file";
                    let file = b.users_file.as_ref().ok_or_else(|| {
                        ConfigError::new(
                            key,
                            "required key is missing (the bundled registry's users: a file of user:password lines)",
                        )
                    })?;
                    Some(
                        BasicAuth::from_file(&resolve(file))
                            .map_err(|e| ConfigError::new(key, e.to_string()))?,
                    )
                }
            };
            let tls = match &r.tls {
                None => None,
                Some(t) => {
                    if t.ca_file.is_some() {
                        return Err(ConfigError::new(
                            "schema_registry.tls.ca_file",
                            "only for mode: external; the bundled registry serves cert_file and its own client trusts it",
                        ));
                    }
                    let missing = |k: &str| {
                        ConfigError::new(
                            format!("schema_registry.tls.{k}"),
                            "required key is missing (TLS of the bundled registry needs cert_file and key_file, PEM)",
                        )
                    };
                    let cert = resolve(t.cert_file.as_ref().ok_or_else(|| missing("cert_file"))?);
                    let key = resolve(t.key_file.as_ref().ok_or_else(|| missing("key_file"))?);
                    let identity = TlsIdentity::from_pem_files(&cert, &key).map_err(|e| {
                        let k = match e.file() {
                            SecurityFile::Key => "key_file",
                            _ => "cert_file",
                        };
                        ConfigError::new(format!("schema_registry.tls.{k}"), e.to_string())
                    })?;
                    if identity.local_host_name(r.listen.ip()).is_none() {
                        let ip = if r.listen.ip().is_unspecified() {
                            "127.0.0.1".to_string()
                        } else {
                            r.listen.ip().to_string()
                        };
                        return Err(ConfigError::new(
                            "schema_registry.tls.cert_file",
                            format!(
                                "the certificate is valid neither for {ip} nor for localhost, which Sluice's own client uses to reach the bundled registry; add one of them to its subjectAltName"
                            ),
                        ));
                    }
                    Some(identity)
                }
            };
            let kafka_storage = match (r.storage, &kafka) {
                (Some(super::RegistryStorageSetting::Directory), _) | (None, None) => None,
                (Some(super::RegistryStorageSetting::Kafka), None) => {
                    return Err(ConfigError::new(
                        "schema_registry.storage",
                        "kafka storage needs sink.kafka (the cluster to store the registry in); use storage: directory without it",
                    ))
                }
                (_, Some(k)) => {
                    if !valid_topic(&r.topic) {
                        return Err(ConfigError::new(
                            "schema_registry.topic",
                            "not a valid topic name",
                        ));
                    }
                    let mut s = sluice_schema_registry::KafkaStorageConfig::new(&k.bootstrap_servers);
                    s.topic = r.topic.clone();
                    s.transactional_id = format!("sluice-registry-{}", r.topic);
                    s.replication_factor = k.topic_replication_factor;
                    s.lazy_writer = true;
                    s.properties = k
                        .security
                        .properties()
                        .into_iter()
                        .map(|(a, b)| (a.to_string(), b))
                        .collect();
                    s.properties.extend(
                        k.properties
                        .iter()
                        .filter(|(key, _)| {
                            key.starts_with("security.")
                                || key.starts_with("sasl.")
                                || key.starts_with("ssl.")
                        })
                        .map(|(a, b)| (a.clone(), b.clone())),
                    );
                    Some(Box::new(s))
                }
            };
            RegistrySettings::Bundled {
                listen: r.listen,
                data_dir: resolve(&r.data_dir),
                kafka_storage,
                basic_auth,
                tls,
            }
        }
        RegistryMode::External => {
            let url = r.url.clone().ok_or_else(|| {
                ConfigError::new(
                    "schema_registry.url",
                    "required key is missing (mode is external)",
                )
            })?;
            let parsed = url::Url::parse(&url).map_err(|e| {
                ConfigError::new(
                    "schema_registry.url",
                    format!("not a valid URL ({e}); expected http(s)://HOST:PORT"),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::new(
                    "schema_registry.url",
                    "expected an http:// or https:// URL",
                ));
            }
            let basic_auth = match &r.basic_auth {
                None => None,
                Some(b) => {
                    if b.users_file.is_some() {
                        return Err(ConfigError::new(
                            "schema_registry.basic_auth.users_file",
                            "only for mode: bundled; an external registry takes username and password_file",
                        ));
                    }
                    if !parsed.username().is_empty() {
                        return Err(ConfigError::new(
                            "schema_registry.basic_auth",
                            "schema_registry.url already carries credentials; keep one of the two",
                        ));
                    }
                    let username = b.username.clone().ok_or_else(|| {
                        ConfigError::new(
                            "schema_registry.basic_auth.username",
                            "required key is missing (basic_auth of an external registry needs username and password_file)",
                        )
                    })?;
                    let key = "schema_registry.basic_auth.password_file";
                    let file = resolve(b.password_file.as_ref().ok_or_else(|| {
                        ConfigError::new(
                            key,
                            "required key is missing (basic_auth of an external registry needs username and password_file)",
                        )
                    })?);
                    Some(Credentials {
                        username,
                        password: read_secret(key, &file)?,
                    })
                }
            };
            let ca_pem = match &r.tls {
                None => None,
                Some(t) => {
                    for (k, set) in [
                        ("cert_file", t.cert_file.is_some()),
                        ("key_file", t.key_file.is_some()),
                    ] {
                        if set {
                            return Err(ConfigError::new(
                                format!("schema_registry.tls.{k}"),
                                "only for mode: bundled; for an external registry set ca_file (the CA to trust)",
                            ));
                        }
                    }
                    let key = "schema_registry.tls.ca_file";
                    let file = resolve(t.ca_file.as_ref().ok_or_else(|| {
                        ConfigError::new(
                            key,
                            "required key is missing (the PEM CA certificate(s) to trust)",
                        )
                    })?);
                    let pem = std::fs::read(&file).map_err(|e| {
                        ConfigError::new(key, format!("cannot read {}: {e}", file.display()))
                    })?;
                    sluice_schema_registry::check_pem_certificates(&pem)
                        .map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?;
                    Some(pem)
                }
            };
            RegistrySettings::External {
                url,
                basic_auth,
                ca_pem,
            }
        }
    };
    let decimal_handling = match cfg.sink.as_ref().map(|s| s.kafka.decimal_handling) {
        Some(super::DecimalHandlingSetting::Double) => sluice_avro::DecimalHandling::Double,
        Some(super::DecimalHandlingSetting::String) => sluice_avro::DecimalHandling::String,
        _ => sluice_avro::DecimalHandling::Precise,
    };
    // NaN and ±Infinity have a representation as double or string: the source keeps them.
    let mut source = source;
    if let Some(s) = source.as_mut() {
        s.keep_special_numerics = decimal_handling != sluice_avro::DecimalHandling::Precise;
    }
    Ok(Validated {
        on_incompatible: cfg.schema_registry.on_incompatible,
        slot_busy_timeout: Duration::from_secs(
            cfg.source
                .as_ref()
                .map_or(60, |s| s.postgres.slot_busy_timeout_secs),
        ),
        source,
        kafka,
        transactional_id,
        batch,
        topic_prefix,
        tombstones,
        envelope: match cfg.sink.as_ref().map(|s| s.kafka.envelope) {
            Some(super::EnvelopeSetting::Flat) => sluice_avro::Envelope::Flat,
            _ => sluice_avro::Envelope::Debezium,
        },
        transaction_metadata: cfg
            .sink
            .as_ref()
            .is_some_and(|s| s.kafka.transaction_metadata),
        subjects: match cfg.sink.as_ref().map(|s| s.kafka.subject_name_strategy) {
            Some(super::SubjectStrategySetting::Record) => sluice_avro::SubjectNameStrategy::Record,
            Some(super::SubjectStrategySetting::TopicRecord) => {
                sluice_avro::SubjectNameStrategy::TopicRecord
            }
            _ => sluice_avro::SubjectNameStrategy::Topic,
        },
        decimal_handling,
        time_precision: match cfg.sink.as_ref().map(|s| s.kafka.time_precision) {
            Some(super::TimePrecisionSetting::Adaptive) => sluice_avro::TimePrecision::Adaptive,
            Some(super::TimePrecisionSetting::Connect) => sluice_avro::TimePrecision::Connect,
            _ => sluice_avro::TimePrecision::AdaptiveTimeMicroseconds,
        },
        registry,
        admin_listen: cfg.admin.listen,
    })
}

/// `source.postgres.tls`, files read; without the section, the URL's `sslmode`
/// (disable, prefer, require) or prefer.
fn postgres_tls(
    t: Option<&super::PostgresTls>,
    pgcfg: &tokio_postgres::Config,
    resolve: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
) -> Result<sluice_postgres::tls::TlsSettings, ConfigError> {
    use sluice_postgres::tls::{TlsMode, TlsSettings};
    let Some(t) = t else {
        let mode = match pgcfg.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => TlsMode::Disable,
            tokio_postgres::config::SslMode::Require => TlsMode::Require,
            _ => TlsMode::Prefer,
        };
        return Ok(TlsSettings {
            mode,
            ..Default::default()
        });
    };
    let mode = TlsMode::parse(&t.mode).ok_or_else(|| {
        ConfigError::new(
            "source.postgres.tls.mode",
            format!(
                "{:?} is not a mode: use disable, prefer, require, verify-ca or verify-full",
                t.mode
            ),
        )
    })?;
    let read =
        |key: &str, f: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, ConfigError> {
            f.as_ref()
                .map(|p| {
                    let path = resolve(p);
                    std::fs::read(&path).map_err(|e| {
                        ConfigError::new(key, format!("cannot read {}: {e}", path.display()))
                    })
                })
                .transpose()
        };
    let settings = TlsSettings {
        mode,
        ca_pem: read("source.postgres.tls.ca_file", &t.ca_file)?,
        client_cert_pem: read("source.postgres.tls.cert_file", &t.cert_file)?,
        client_key_pem: read("source.postgres.tls.key_file", &t.key_file)?,
    };
    if settings.client_cert_pem.is_some() != settings.client_key_pem.is_some() {
        return Err(ConfigError::new(
            "source.postgres.tls.cert_file",
            "cert_file and key_file go together (a client certificate needs its key)",
        ));
    }
    // Builds the TLS configuration now, so a bad file is a configuration error.
    settings
        .client_config()
        .map_err(|e| ConfigError::new("source.postgres.tls", e.to_string()))?;
    Ok(settings)
}

/// A secret file's content without its trailing newline; the error names the key.
fn read_secret(key: &str, path: &std::path::Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// `sink.kafka.security`: protocol, SASL credentials (password from a file or the
/// value), TLS files read now.
fn kafka_security(
    s: &super::model::KafkaSecuritySection,
    resolve: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
) -> Result<sluice_kafka::Security, ConfigError> {
    use sluice_kafka::security::{Mechanism, Protocol, Sasl, Tls};
    let protocol =
        match &s.protocol {
            Some(p) => Protocol::parse(p).ok_or_else(|| {
                ConfigError::new(
                    "sink.kafka.security.protocol",
                    format!("{p:?} is not one of plaintext, ssl, sasl_plaintext, sasl_ssl"),
                )
            })?,
            None if s.sasl.is_some() || s.tls.is_some() => return Err(ConfigError::new(
                "sink.kafka.security.protocol",
                "required key is missing when sasl or tls is set (ssl, sasl_plaintext or sasl_ssl)",
            )),
            None => Protocol::Plaintext,
        };
    let sasl = match &s.sasl {
        None => None,
        Some(a) => {
            let mechanism = Mechanism::parse(&a.mechanism).ok_or_else(|| {
                ConfigError::new(
                    "sink.kafka.security.sasl.mechanism",
                    format!(
                        "{:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                        a.mechanism
                    ),
                )
            })?;
            let password = match (&a.password, &a.password_file) {
                (Some(p), None) => p.clone(),
                (None, Some(f)) => {
                    read_secret("sink.kafka.security.sasl.password_file", &resolve(f))?
                }
                _ => {
                    return Err(ConfigError::new(
                        "sink.kafka.security.sasl.password_file",
                        "set exactly one of password_file and password",
                    ))
                }
            };
            Some(Sasl {
                mechanism,
                username: a.username.clone(),
                password,
            })
        }
    };
    let pem = |key: &str, f: &Option<std::path::PathBuf>| -> Result<Option<String>, ConfigError> {
        f.as_ref()
            .map(|f| {
                let path = resolve(f);
                std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(key, format!("cannot read {}: {e}", path.display()))
                })
            })
            .transpose()
    };
    let t = s.tls.clone().unwrap_or_default();
    let security = sluice_kafka::Security {
        protocol,
        sasl,
        tls: Tls {
            ca_pem: pem("sink.kafka.security.tls.ca_file", &t.ca_file)?,
            cert_pem: pem("sink.kafka.security.tls.cert_file", &t.cert_file)?,
            key_pem: pem("sink.kafka.security.tls.key_file", &t.key_file)?,
        },
    };
    security
        .validate()
        .map_err(|(key, msg)| ConfigError::new(key, msg))?;
    Ok(security)
}
