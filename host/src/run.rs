//! `host run`: one full sync of a connector, with a summary.

use crate::session::{connect, ConnectorArgs, Session};
use crate::sync;
use crate::Format;
use anyhow::{anyhow, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub connector: ConnectorArgs,
    /// Where to write the sync.
    #[arg(short = 'f', long = "file", default_value = "sync.c1z")]
    pub file: PathBuf,
    /// Summary format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

pub fn main(args: RunArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let mut session = connect(&args.connector, true).await?;
    let result = async {
        let whoami = session
            .inst
            .validate()
            .await
            .map_err(|e| anyhow!("validating the connection failed: {e}"))?;
        eprintln!("connected: {whoami}");
        let progress = Progress::new();
        let result = sync::run(
            &mut session.inst,
            &session.configured.resource_types,
            &args.file,
            &session.resume_key,
            &progress,
        )
        .await;
        progress.clear();
        result
    }
    .await;
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            return Err(anyhow!(
                "{e:#}{}\n{} is unchanged; {}",
                session.denied_note(),
                args.file.display(),
                kept_progress(&args.file)
            ))
        }
    };
    summary.elapsed = started.elapsed();
    let denied = session.outbound.denied.lock().expect("denied lock").clone();
    print_summary(&summary, &session, &denied, args.output)
}

/// Where an unfinished sync's progress waits for the next run, if it was saved.
fn kept_progress(out: &std::path::Path) -> String {
    let checkpoint = crate::store::writer::checkpoint_path(out);
    if checkpoint.metadata().is_ok_and(|m| m.len() > 0) {
        format!(
            "the pages already read are kept in {}, and the next run into the same file continues from them",
            checkpoint.display()
        )
    } else {
        "nothing was written".to_string()
    }
}

/// A one-line progress display on an interactive terminal, redrawn at most ten times
/// a second; nothing when stderr is a file or a pipe.
struct Progress {
    tty: bool,
    last: std::cell::Cell<Option<Instant>>,
    started: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: std::cell::Cell::new(None),
            started: Instant::now(),
        }
    }

    fn clear(&self) {
        if self.tty && self.last.get().is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}

impl sync::Observer for Progress {
    fn page_done(&self, s: &sync::Summary) -> Result<()> {
        if !self.tty
            || self
                .last
                .get()
                .is_some_and(|t| t.elapsed().as_millis() < 100)
        {
            return Ok(());
        }
        self.last.set(Some(Instant::now()));
        let phase = ["grants", "entitlements", "resources"]
            .into_iter()
            .find(|p| s.phases_ms.contains_key(*p))
            .map_or("resources", |done| match done {
                "resources" => "entitlements",
                _ => "grants",
            });
        eprint!(
            "\r\x1b[2K{:>5.1} s  listing {phase}: {} resources, {} entitlements, {} grants",
            self.started.elapsed().as_secs_f64(),
            s.resources.values().sum::<u64>(),
            s.entitlements,
            s.grants
        );
        Ok(())
    }
}

fn print_summary(
    s: &sync::Summary,
    session: &Session,
    denied: &[String],
    format: Format,
) -> Result<()> {
    let calls = &session.calls();
    let loaded = &session.loaded;
    let instantiate_ms = session.instantiate_time.as_secs_f64() * 1000.0;
    let guest_mib = session.inst.memory_peak() as f64 / (1 << 20) as f64;
    let total_calls: u64 = calls.values().sum();
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "file": s.output.display().to_string(),
                "sync_id": s.sync_id,
                "resumed": s.resumed,
                "resources": s.resources,
                "entitlements": s.entitlements,
                "grants": s.grants,
                "expansion_edges": s.expansion_edges,
                "expanded_grants_created": s.expanded_created,
                "expanded_grants_updated": s.expanded_updated,
                "aws_calls": total_calls,
                "aws_calls_by_operation": calls,
                "denied_requests": denied,
                "warnings": s.warnings,
                "phases_ms": s.phases_ms,
                "seconds": s.elapsed.as_secs_f64(),
                "component_sha256": loaded.sha256,
                "component_from_cache": loaded.from_cache,
                "component_load_ms": loaded.load_time.as_secs_f64() * 1000.0,
                "component_instantiate_ms": instantiate_ms,
                "guest_memory_peak_mib": guest_mib,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            println!(
                "sync {} written to {} in {:.2} s{}",
                s.sync_id,
                s.output.display(),
                s.elapsed.as_secs_f64(),
                if s.resumed {
                    " (continued from its checkpoint)"
                } else {
                    ""
                }
            );
            let per_type: Vec<String> = s
                .resources
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            println!(
                "  resources     {} ({})",
                s.resources.values().sum::<u64>(),
                per_type.join(", ")
            );
            println!("  entitlements  {}", s.entitlements);
            println!(
                "  grants        {} from the connector, {} added by expanding {} edges, {} updated by it",
                s.grants, s.expanded_created, s.expansion_edges, s.expanded_updated
            );
            let phases: Vec<String> = s
                .phases_ms
                .iter()
                .map(|(p, ms)| format!("{p} {ms} ms"))
                .collect();
            println!("  phases        {}", phases.join(", "));
            let per_op: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
            println!("  AWS calls     {total_calls} ({})", per_op.join(", "));
            if !denied.is_empty() {
                println!("  denied        {}", denied.join(", "));
            }
            println!(
                "  component     {} ({} in {:.1} ms, instantiated in {:.1} ms, {guest_mib:.1} MiB of memory at most)",
                &loaded.sha256[..12],
                if loaded.from_cache {
                    "loaded from the compiled cache"
                } else {
                    "compiled"
                },
                loaded.load_time.as_secs_f64() * 1000.0,
                instantiate_ms
            );
            println!("  warnings      {}", s.warnings.len());
            for w in &s.warnings {
                println!("    - {w}");
            }
        }
    }
    Ok(())
}
