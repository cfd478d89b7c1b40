//! The ferrokms command: `serve` runs the key management service.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ferrokms_core::ids::AccountId;
use ferrokms_server::{DataDir, Mode, ServerConfig};
use serde::Deserialize;

const DEFAULT_LISTEN: &str = "127.0.0.1:4599";
const DEFAULT_DATA_DIR: &str = "ferrokms-data";
const DEFAULT_DEV_ACCOUNT: &str = "000000000000";

#[derive(Parser)]
#[command(
    name = "ferrokms",
    version,
    about = "A key management service that speaks the AWS KMS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4599].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where keys, the root key and credentials live [default: ./ferrokms-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML file with `listen`, `data_dir`, `dev`, `dev_account_id`; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Local-testing mode: loopback only, any access key and secret accepted, signatures
    /// not checked.
    #[arg(long)]
    dev: bool,
    /// The account that dev-mode callers without a 12-digit access key id act in.
    #[arg(long)]
    dev_account_id: Option<String>,
    /// Keep the store in a temporary folder that is removed at exit.
    #[arg(long)]
    ephemeral: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    dev: bool,
    dev_account_id: Option<String>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROKMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let dev = args.dev || file.dev;
    let listen = match args.listen.or(file.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse()?,
    };
    if dev && !listen.ip().is_loopback() {
        bail!("--dev accepts any credentials, so it listens on loopback only (not {listen})");
    }
    let mode = if dev {
        let id = args
            .dev_account_id
            .or(file.dev_account_id)
            .unwrap_or_else(|| DEFAULT_DEV_ACCOUNT.to_owned());
        let default_account = AccountId::parse(&id)
            .with_context(|| format!("--dev-account-id must be 12 digits, not {id:?}"))?;
        Mode::Dev { default_account }
    } else {
        Mode::Strict
    };

    // Held until exit: dropping it removes an ephemeral store.
    let ephemeral = if args.ephemeral {
        Some(tempfile::Builder::new().prefix("ferrokms-").tempdir()?)
    } else {
        None
    };
    let data_path = match &ephemeral {
        Some(t) => t.path().to_owned(),
        None => args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    };
    let data = DataDir::open(&data_path)
        .await
        .with_context(|| format!("opening data directory {}", data_path.display()))?;
    let credentials = match mode {
        Mode::Strict => data.admin_credentials().await?,
        Mode::Dev { .. } => None,
    };
    let store = data.store.clone();
    let banner_mode = mode.clone();
    ferrokms_server::serve(
        ServerConfig { listen, mode },
        store.clone(),
        data.root.clone(),
        move |addr| {
            println!("ferrokms listening on http://{addr}");
            let note = if args.ephemeral { " (ephemeral: removed at exit)" } else { "" };
            println!("data directory: {}{note}", data_path.display());
            match &banner_mode {
                Mode::Dev { default_account } => {
                    println!("DEV MODE: signatures are NOT checked; any access key and secret are accepted.");
                    println!("A 12-digit access key id is used as the account; any other acts in account {default_account}.");
                    println!("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1");
                }
                Mode::Strict => match &credentials {
                    Some(c) => {
                        println!("admin credentials (also in {}):", c.file.display());
                        print!("{}", c.export_lines().as_str());
                        println!("export AWS_DEFAULT_REGION=us-east-1");
                    }
                    None => println!("admin credentials file is gone; use the access keys you created"),
                },
            }
            println!("try: aws --endpoint-url http://{addr} kms create-key");
        },
        shutdown_signal(),
    )
    .await?;
    store.close().await;
    drop(ephemeral);
    Ok(())
}
