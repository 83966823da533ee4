//! Run the registry on its own:
//! `cargo run -p sluice-schema-registry --example serve -- <dir> [127.0.0.1:8081]`
//! Stops on Ctrl-C.

use std::sync::Arc;

use sluice_schema_registry::{serve, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: serve <storage dir> [listen address, default 127.0.0.1:8081]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_string());
    let reg = Arc::new(Registry::open(std::path::Path::new(&dir))?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("schema registry on http://{}", listener.local_addr()?);
    serve(listener, reg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
