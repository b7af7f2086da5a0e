//! `host`: runs baton connector components in a wasmtime sandbox and writes `.c1z` files.

mod bindings;
mod credentials;
mod decode;
mod encode;
mod expand;
mod http_client;
mod log;
mod metrics;
mod outbound;
mod policy;
mod provision;
mod read;
mod run;
mod runtime;
mod schedule;
mod serve;
mod session;
mod store;
mod sync;
mod upload;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "host",
    version,
    about = "Run baton connector components in a sandbox and read the .c1z files they produce"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(clap::Args, Clone)]
pub struct ReadArgs {
    /// The .c1z file to read.
    #[arg(short = 'f', long = "file", default_value = "sync.c1z")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Run one full sync of a connector component and write a .c1z file.
    Run(run::RunArgs),
    /// Run connectors as a service: syncs on schedule, uploads, health, metrics, provisioning API.
    Serve(serve::ServeArgs),
    /// Grant an entitlement to a principal (needs --provisioning).
    Grant(provision::GrantArgs),
    /// Revoke a grant (needs --provisioning).
    Revoke(provision::RevokeArgs),
    /// Print the least-privilege IAM policy and the role trust policy for these settings.
    Policy(policy::PolicyArgs),
    /// List the resources of the latest sync in a .c1z file.
    Resources {
        #[command(flatten)]
        read: ReadArgs,
        /// Only resources of this type (e.g. iam_user).
        #[arg(short = 't', long = "resource-type")]
        resource_type: Option<String>,
    },
    /// List the entitlements of the latest sync.
    Entitlements {
        #[command(flatten)]
        read: ReadArgs,
        #[arg(short = 't', long = "resource-type")]
        resource_type: Option<String>,
    },
    /// List the grants of the latest sync.
    Grants {
        #[command(flatten)]
        read: ReadArgs,
        /// Only grants on resources of this type.
        #[arg(short = 't', long = "resource-type")]
        resource_type: Option<String>,
        /// Only grants of this entitlement id.
        #[arg(short = 'e', long = "entitlement")]
        entitlement: Option<String>,
        /// Only grants to principals of this type.
        #[arg(long = "principal-type")]
        principal_type: Option<String>,
    },
    /// Counts per resource type, entitlements and grants of the latest sync.
    Stats {
        #[command(flatten)]
        read: ReadArgs,
    },
}

fn main() -> ExitCode {
    // Like other command-line tools: end quietly when the reader of our output goes away
    // (`host policy … | head`) instead of failing to print.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Serve(args) => serve::main(args),
        Command::Grant(args) => provision::grant(args),
        Command::Revoke(args) => provision::revoke(args),
        Command::Policy(args) => policy::main(args),
        Command::Resources {
            read,
            resource_type,
        } => read::resources(&read, resource_type.as_deref()),
        Command::Entitlements {
            read,
            resource_type,
        } => read::entitlements(&read, resource_type.as_deref()),
        Command::Grants {
            read,
            resource_type,
            entitlement,
            principal_type,
        } => read::grants(
            &read,
            resource_type.as_deref(),
            entitlement.as_deref(),
            principal_type.as_deref(),
        ),
        Command::Stats { read } => read::stats(&read),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
