//! Prometheus metrics. Base units, `_total` counters, bounded labels (never LSNs or keys).

use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Events produced to Kafka and acknowledged, by table and op.
    pub events: IntCounterVec,
    /// Tombstones produced after deletes.
    pub tombstones: IntCounter,
    /// The last LSN confirmed to PostgreSQL as flushed (as a number).
    pub confirmed_lsn: Gauge,
    /// 1 while the replication connection is open.
    pub source_connected: IntGauge,
    /// 1 while changes are streaming and the sink is producing.
    pub ready: IntGauge,
    /// Deliveries in flight to Kafka.
    pub in_flight: IntGauge,
    /// Commit time of the last source transaction produced, in Unix seconds.
    pub last_source_ts: Gauge,
    /// Pipeline errors, by class (transient, permanent).
    pub errors: IntCounterVec,
    /// Schemas registered (or found) in the registry, by subject kind (key, value).
    pub schemas: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(
                "sluice_events_total",
                "Change events produced to Kafka and acknowledged by the broker",
            ),
            &["table", "op"],
        )
        .expect("valid metric");
        let tombstones = IntCounter::new(
            "sluice_tombstones_total",
            "Tombstones produced after deletes",
        )
        .expect("valid metric");
        let confirmed_lsn = Gauge::new(
            "sluice_source_confirmed_flush_lsn",
            "Last LSN confirmed to PostgreSQL as flushed (everything up to it is acknowledged by Kafka)",
        )
        .expect("valid metric");
        let source_connected = IntGauge::new(
            "sluice_source_connected",
            "1 while the replication connection is open",
        )
        .expect("valid metric");
        let ready = IntGauge::new("sluice_ready", "1 while replicating and producing")
            .expect("valid metric");
        let in_flight = IntGauge::new(
            "sluice_sink_in_flight_events",
            "Events sent to Kafka and not yet acknowledged",
        )
        .expect("valid metric");
        let last_source_ts = Gauge::new(
            "sluice_last_event_source_timestamp_seconds",
            "Commit time of the last source transaction produced (Unix seconds)",
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new("sluice_errors_total", "Pipeline errors by class"),
            &["class"],
        )
        .expect("valid metric");
        let schemas = IntCounterVec::new(
            Opts::new(
                "sluice_schema_registrations_total",
                "Schemas registered or found in the registry",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("sluice_build_info", "Build information"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tombstones.clone()),
            Box::new(confirmed_lsn.clone()),
            Box::new(source_connected.clone()),
            Box::new(ready.clone()),
            Box::new(in_flight.clone()),
            Box::new(last_source_ts.clone()),
            Box::new(errors.clone()),
            Box::new(schemas.clone()),
            Box::new(build_info.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for class in ["transient", "permanent"] {
            errors.with_label_values(&[class]);
        }
        Metrics {
            registry,
            events,
            tombstones,
            confirmed_lsn,
            source_connected,
            ready,
            in_flight,
            last_source_ts,
            errors,
            schemas,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counters_with_labels() {
        let m = super::Metrics::new();
        m.events
            .with_label_values(&["public.orders", "c"])
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains("sluice_events_total{op=\"c\",table=\"public.orders\"} 3"),
            "{text}"
        );
        assert!(text.contains("sluice_build_info{version="), "{text}");
    }
}
