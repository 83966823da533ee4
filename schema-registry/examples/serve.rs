//! Run the registry on its own:
//! `cargo run -p sluice-schema-registry --example serve -- <storage> [127.0.0.1:8081]`
//! where `<storage>` is a directory, or `kafka://host:port[,host:port...][/topic]`
//! for the Kafka backend. Stops on Ctrl-C.

use std::sync::Arc;

use sluice_schema_registry::{serve, KafkaStorageConfig, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(storage) = args.next() else {
        eprintln!(
            "usage: serve <storage dir | kafka://bootstrap[/topic]> [listen address, default 127.0.0.1:8081]"
        );
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_string());
    let reg = match storage.strip_prefix("kafka://") {
        Some(rest) => {
            let (bootstrap, topic) = rest.split_once('/').unwrap_or((rest, ""));
            let mut config = KafkaStorageConfig::new(bootstrap);
            if !topic.is_empty() {
                config.topic = topic.to_string();
            }
            Registry::open_kafka(config).await?
        }
        None => Registry::open(std::path::Path::new(&storage))?,
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "schema registry on http://{} ({})",
        listener.local_addr()?,
        reg.storage()
    );
    serve(listener, Arc::new(reg), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
