//! `host serve`: many connectors side by side, each on its own thread with its own
//! wasmtime engine, store and instances, synced on its schedule and delivered to its sink;
//! an HTTP server for health, metrics and provisioning; a graceful stop on SIGTERM.

mod api;
pub mod config;
mod connector;

use crate::log;
use anyhow::{anyhow, Context, Result};
use config::ServeConfig;
use connector::Handle;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The service configuration (TOML). Without it, one connector is configured from
    /// `BATON_*` environment variables, as in the product's Kubernetes guide.
    #[arg(short = 'c', long = "config", env = "BATON_HOST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Check the configuration and load every component (compiling it into the cache),
    /// then exit: 0 when all can run.
    #[arg(long)]
    pub check: bool,
}

pub fn main(args: ServeArgs) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let config = match &args.config {
        Some(path) => config::from_file(path, &env)?,
        None => config::from_env(&env).context(
            "configuring the single connector from the environment (pass --config for a configuration file)",
        )?,
    };
    log::init(config.server.log_format);
    if args.config.is_none() && std::env::var_os("BATON_CLIENT_ID").is_some() {
        log::warn(
            "BATON_CLIENT_ID is set, but this host does not talk to ConductorOne; syncs go to the configured upload sink (BATON_UPLOAD_URL, BATON_UPLOAD_S3_BUCKET or BATON_UPLOAD_DIR)",
            &[],
        );
    }
    if args.check {
        return check(&config);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(config))
}

/// `--check`: every connector's component loads, implements this host's contract and
/// accepts its settings.
fn check(config: &ServeConfig) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = 0;
    for plan in &config.connectors {
        match rt.block_on(connector::prepare(plan)) {
            Ok((_, loaded)) => println!(
                "ok      {}: {} (sha256 {}), {}, upload to {}",
                plan.spec.name,
                plan.spec.component.display(),
                &loaded.sha256[..12],
                plan.schedule,
                plan.sink.kind()
            ),
            Err(e) => {
                failed += 1;
                println!("refused {}: {e:#}", plan.spec.name);
            }
        }
    }
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} connectors cannot run",
            config.connectors.len()
        ));
    }
    Ok(())
}

async fn serve(config: ServeConfig) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .map_err(|e| anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener.local_addr()?.to_string();
    let state_dir = config.server.state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    for plan in config.connectors {
        let (handle, thread) = connector::start(plan, &state_dir, stop_rx.clone())?;
        handles.push(handle);
        threads.push(thread);
    }
    let handles: Arc<Vec<Arc<Handle>>> = Arc::new(handles);
    let names: Vec<&str> = handles.iter().map(|h| h.name.as_str()).collect();
    log::info(
        "serving",
        &[
            ("address", &address),
            ("connectors", &names.join(",")),
            (
                "api",
                if config.server.api_token.is_some() {
                    "on"
                } else {
                    "off (no token)"
                },
            ),
        ],
    );
    let server = tokio::spawn(api::serve(
        listener,
        handles.clone(),
        config.server.api_token.clone(),
        stop_rx.clone(),
    ));

    shutdown_signal().await;
    log::info(
        "stopping: no new syncs; syncs in flight stop after their current page",
        &[(
            "grace",
            &format!("{}s", config.server.shutdown_grace.as_secs()),
        )],
    );
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + config.server.shutdown_grace;
    for thread in threads {
        while !thread.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let stuck: Vec<&str> = handles
        .iter()
        .filter(|h| !h.stopped.load(std::sync::atomic::Ordering::SeqCst))
        .map(|h| h.name.as_str())
        .collect();
    server.abort();
    if stuck.is_empty() {
        log::info("stopped", &[]);
    } else {
        log::warn(
            "stopped with connectors still busy after the grace period; their previous files are unchanged",
            &[("connectors", &stuck.join(","))],
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers there is nothing to wait for but the process's end.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
