//! The ferrokms command: `serve` runs the key management service.

mod doctor;
mod flags;

use ferrokms_store::prelude::*;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ferrokms_core::ids::AccountId;
use ferrokms_server::audit::event::ChangeSource;
use ferrokms_server::tls::{self, Tls};
use ferrokms_server::{identities, DataDir, MetricsAccess, Mode, ServerConfig};

use flags::*;

/// Under load glibc's allocator took about a sixth of the server's time (perf); with
/// mimalloc the same benchmark runs about a fifth faster (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let format = LogFormat::from_env(std::env::var("FERROKMS_LOG_FORMAT").ok().as_deref())?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROKMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let cli = flags::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Admin(args) => runtime.block_on(admin(args)),
        Command::Policy(args) => runtime.block_on(policy(args)),
        Command::Audit(args) => runtime.block_on(audit(args)),
        Command::Backup(args) => runtime.block_on(backup(args)),
        Command::Restore(args) => runtime.block_on(restore(args)),
        Command::Init(args) => runtime.block_on(init(args)),
        Command::MigrateRootKey(args) => runtime.block_on(migrate_root_key(args)),
        Command::XksProxy(args) => runtime.block_on(xks_proxy(args)),
        Command::KubernetesKmsPlugin(args) => runtime.block_on(kubernetes_kms_plugin(args)),
        Command::Doctor(args) => runtime.block_on(doctor(args)),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ferrokms", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { out_dir } => {
            let command = <Cli as clap::CommandFactory>::command();
            match out_dir {
                None => clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .context("writing the manual page"),
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    clap_mangen::generate_to(command, &dir)
                        .with_context(|| format!("writing the manual pages to {}", dir.display()))
                }
            }
        }
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
    let mut file = read_config(args.config.as_deref())?;
    let plan = ServePlan::decide(&args, &file)?;
    // The module's known-answer tests, before any key is touched: a FIPS module that fails
    // them has already stopped the process; any other failure stops it here.
    let module = ferrokms_core::fips::module();
    let self_tests = ferrokms_core::fips::self_test()
        .map_err(|e| anyhow::anyhow!("{module}: {e}; not starting"))?;
    if ferrokms_core::fips::FIPS_BUILD && !module.fips_mode {
        bail!("this is a FIPS build but {module}: not starting");
    }
    let (listen, mode) = (plan.listen, plan.mode.clone());
    // Held until exit: dropping it removes an ephemeral store.
    let ephemeral = if plan.data_dir.is_none() {
        Some(tempfile::Builder::new().prefix("ferrokms-").tempdir()?)
    } else {
        None
    };
    let data_path = match (&ephemeral, &plan.data_dir) {
        (Some(t), _) => t.path().to_owned(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => PathBuf::from(DEFAULT_DATA_DIR),
    };
    let tls_files = plan.tls;
    let store_url = plan.store;
    let limits = file.limits;
    let regions = match &file.regions {
        Some(names) => ferrokms_server::regions::Regions::from_names(names)
            .map_err(|e| anyhow::anyhow!("config: {e}"))?,
        None => ferrokms_server::regions::Regions::default(),
    };
    let drain_seconds = args.drain_seconds.or(file.drain_seconds).unwrap_or(0.0);
    if !(0.0..=300.0).contains(&drain_seconds) {
        bail!("drain_seconds must be from 0 to 300, not {drain_seconds}");
    }
    let drain = std::time::Duration::from_secs_f64(drain_seconds);
    let mut quotas = file.quotas;
    if let Some(switch) = args.quotas {
        quotas.enabled = Some(matches!(switch, Switch::On));
    }
    let data = DataDir::open_exclusive(&data_path, store_url.as_deref())
        .await
        .with_context(|| format!("opening data directory {}", data_path.display()))?;
    // Before anything is written: the audit keys, checked against the public key kept in
    // the data directory (made there at the first start).
    let audit_anchor = data.audit_anchor().await?;
    // Keys' uses are recorded from the first start of a version that records them
    // (GetKeyLastUsage's TrackingStartDate).
    data.store
        .usage_tracking_start(ferrokms_server::now_millis())
        .await
        .context("recording when key usage tracking began")?;
    let keys = audit_anchor.keys.clone();
    let changes =
        identities::IdentityChanges::new(ChangeSource::ConfigFile, &data.node_id, keys.clone());
    identities::apply_users(
        data.store.as_ref(),
        &changes,
        data.root.as_ref(),
        &file.users,
    )
    .await
    .context("applying the users of the config file")?;
    identities::apply_roles(data.store.as_ref(), &changes, &file.roles)
        .await
        .context("applying the roles of the config file")?;
    let mut seeds = std::mem::take(&mut file.seed);
    if let Some(path) = &args.seed {
        seeds.extend(read_seeds(path)?);
    }
    if !seeds.is_empty() {
        let (dev, account) = match &mode {
            Mode::Dev { default_account } => (true, default_account.clone()),
            Mode::Strict => (false, identities::parse_account(DEFAULT_SEED_ACCOUNT)?),
        };
        let report = ferrokms_server::seed::apply_seeds(
            data.store.as_ref(),
            data.root.as_ref(),
            &changes,
            &seeds,
            dev,
            &account,
            &quotas.resources(),
        )
        .await
        .context("applying the seeded keys")?;
        tracing::info!(
            created = report.created,
            unchanged = report.unchanged,
            "seeded keys applied"
        );
    }
    if let Some(dir) = &file.audit_digest_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    ferrokms_server::audit::chain_now(
        data.store.as_ref(),
        &keys,
        file.audit_digest_dir.clone(),
        changes.committed(),
    )
    .await
    .context("recording the changes of the config file")?;
    let credentials = match mode {
        Mode::Strict => {
            data.admin_credentials(&keys, file.audit_digest_dir.clone())
                .await?
        }
        Mode::Dev { .. } => None,
    };
    let metrics = match &plan.metrics {
        None => None,
        Some(Some(path)) => Some(MetricsAccess {
            token: Some(read_token(path)?),
        }),
        Some(None) => Some(MetricsAccess::default()),
    };
    let (tls, dev_fingerprint) = match (tls_files, plan.dev_tls) {
        (Some(files), _) => (Some(Tls::load(files)?), None),
        (None, true) => {
            let (files, fingerprint) = tls::dev_certificate(&data_path)?;
            let cert = files.cert.clone();
            (Some(Tls::load(files)?), Some((cert, fingerprint)))
        }
        (None, false) => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let plain_beyond_loopback = tls.is_none() && !listen.ip().is_loopback();
    let store = data.store.clone();
    let banner_mode = mode.clone();
    let console = plan.console;
    let root_description = data.root_description.clone();
    ferrokms_server::serve(
        ServerConfig {
            listen,
            mode,
            debug_clock: args.debug_clock,
            job_interval: std::time::Duration::from_secs(60),
            metrics,
            unaudited: args.no_audit,
            node: data.node_id.clone(),
            quotas,
            tls,
            limits,
            cloudhsm_clusters: file.cloudhsm_clusters,
            xks: file.xks,
            regions,
            audit_digest_dir: file.audit_digest_dir,
            audit_keys: keys,
            drain,
            console,
        },
        store.clone(),
        data.root.clone(),
        move |addr| {
            println!("ferrokms listening on {scheme}://{addr}");
            if plain_beyond_loopback {
                eprintln!("WARNING: plain HTTP beyond loopback (--insecure-http): requests can be read and replayed, and answers, data keys among them, cross the network in the clear");
            }
            let mut ca_bundle = String::new();
            if let Some((cert, fingerprint)) = &dev_fingerprint {
                println!("self-signed certificate {} (SHA-256 {fingerprint})", cert.display());
                ca_bundle = format!(" --ca-bundle {}", cert.display());
            }
            let note = if args.ephemeral { " (ephemeral: removed at exit)" } else { "" };
            println!("data directory: {}{note}", data_path.display());
            println!("root key: {root_description}");
            println!(
                "cryptography: {module}; self-tests passed in {} ms",
                self_tests.as_millis()
            );
            match &banner_mode {
                Mode::Dev { default_account } => {
                    println!("DEV MODE: signatures are NOT checked; any access key and secret are accepted.");
                    println!("A 12-digit access key id is used as the account; any other acts in account {default_account}.");
                    println!("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1");
                }
                Mode::Strict => match &credentials {
                    // Under systemd this output is the journal, which others may read
                    // (groups adm, systemd-journal): the secret stays in its file.
                    Some(c) if c.made && std::env::var_os("JOURNAL_STREAM").is_some() => println!(
                        "admin credentials in {} (made now; not shown, this output goes to the journal)",
                        c.file.display()
                    ),
                    Some(c) if c.made => {
                        println!("admin credentials (shown once; kept in {}):", c.file.display());
                        print!("{}", c.key.export_lines().as_str());
                        println!("export AWS_DEFAULT_REGION=us-east-1");
                    }
                    Some(c) => println!("admin credentials in {} (. {} to use them)", c.file.display(), c.file.display()),
                    None => println!("admin credentials file is gone; use the access keys you created"),
                },
            }
            println!("audit signing key: {} ({})", audit_anchor.file.display(), audit_anchor.fingerprint);
            println!("try: aws --endpoint-url {scheme}://{addr}{ca_bundle} kms create-key");
            if console {
                println!("console: {scheme}://{addr}/console/ (sign in with an access key pair)");
            }
        },
        shutdown_signal(),
    )
    .await?;
    store.close().await;
    drop(ephemeral);
    Ok(())
}

/// The data directory (default `./ferrokms-data`) as the tools open it, beside a server
/// that may be running on it.
async fn open_beside_server(data_dir: Option<PathBuf>, store: Option<&str>) -> Result<DataDir> {
    let path = data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    DataDir::open(&path, store)
        .await
        .with_context(|| format!("opening data directory {}", path.display()))
}

fn pair(raw: &str) -> Result<(String, String)> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .with_context(|| format!("{raw:?} is not KEY=VALUE"))
}

async fn policy(args: PolicyArgs) -> Result<()> {
    let PolicyCommand::Explain {
        caller,
        action,
        key,
        region,
        encryption_context,
        conditions,
        source_ip,
        tls,
    } = args.command;
    let data = open_beside_server(args.data_dir, args.store.as_deref()).await?;
    let region = ferrokms_core::ids::Region::parse(&region)
        .with_context(|| format!("{region:?} is not a Region"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let question = ferrokms_server::explain::Question {
        caller,
        action,
        key,
        region,
        encryption_context: encryption_context
            .iter()
            .map(|p| pair(p))
            .collect::<Result<_>>()?,
        conditions: conditions.iter().map(|p| pair(p)).collect::<Result<_>>()?,
        source_ip,
        secure_transport: tls,
        now,
    };
    let limits = read_config(args.config.as_deref())?.quotas.resources();
    let answer =
        ferrokms_server::explain::explain_request(data.store.as_ref(), &limits, &question).await?;
    print!("{}", answer.text);
    data.store.close().await;
    if !answer.allowed {
        std::process::exit(1);
    }
    Ok(())
}

async fn admin(args: AdminArgs) -> Result<()> {
    let data = open_beside_server(args.data_dir, args.store.as_deref()).await?;
    let store = data.store.as_ref();
    let account = identities::parse_account(&args.account)?;
    let keys = data.audit_anchor().await?.keys;
    let changes =
        identities::IdentityChanges::new(ChangeSource::AdminCommand, &data.node_id, keys.clone());
    let outcome = admin_command(&data, &changes, &account, args.command).await;
    // What committed is recorded even when a later step failed.
    ferrokms_server::audit::chain_now(store, &keys, None, changes.committed())
        .await
        .context("recording the change in the audit trail")?;
    data.store.close().await;
    outcome
}

async fn admin_command(
    data: &DataDir,
    changes: &identities::IdentityChanges,
    account: &AccountId,
    command: AdminCommand,
) -> Result<()> {
    let store = data.store.as_ref();
    let account = account.clone();
    match command {
        AdminCommand::CreateUser { user } => {
            let record = identities::ensure_user(store, changes, &account, &user).await?;
            println!("{}", record.arn);
        }
        AdminCommand::CreateAccessKey { user } => {
            let record = identities::find_user(store, &account, &user).await?;
            let key =
                identities::issue_access_key(store, changes, data.root.as_ref(), &record).await?;
            print!("{}", key.export_lines().as_str());
        }
        AdminCommand::DeleteAccessKey { access_key_id } => {
            if !identities::delete_access_key(store, changes, &access_key_id).await? {
                bail!("no access key {access_key_id}");
            }
        }
        AdminCommand::PutUserPolicy {
            user,
            policy_name,
            policy_document,
        } => {
            let record = identities::find_user(store, &account, &user).await?;
            let document = json_or_file(policy_document)?;
            identities::attach_policy(store, changes, &record, &policy_name, &document).await?;
        }
        AdminCommand::CreateRole {
            role,
            trust_policy,
            max_session_duration,
        } => {
            let trust = match trust_policy {
                Some(t) => json_or_file(t)?,
                None => identities::default_trust_policy(&account),
            };
            let record = identities::ensure_role(
                store,
                changes,
                &account,
                &role,
                &trust,
                max_session_duration,
            )
            .await?;
            println!("{}", record.arn);
        }
        AdminCommand::PutRolePolicy {
            role,
            policy_name,
            policy_document,
        } => {
            let arn = identities::role_arn(&account, &role);
            let record = store
                .principal(&arn)
                .await?
                .with_context(|| format!("no role {arn}"))?;
            let document = json_or_file(policy_document)?;
            identities::attach_policy(store, changes, &record, &policy_name, &document).await?;
        }
        AdminCommand::DeleteUserPolicy { user, policy_name } => {
            let record = identities::find_user(store, &account, &user).await?;
            if !identities::detach_policy(store, changes, &record, &policy_name).await? {
                bail!("{} has no policy {policy_name}", record.arn);
            }
        }
        AdminCommand::ListUsers => {
            for p in store.list_principals().await? {
                let keys = store.access_key_ids_of(&p.arn).await?;
                println!("{}\t{}", p.arn, keys.join(","));
            }
        }
    }
    Ok(())
}

/// A command-line document: the JSON itself, or `@path` to read it from a file.
fn json_or_file(arg: String) -> Result<String> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {file}")),
        None => Ok(arg),
    }
}

async fn init(args: InitArgs) -> Result<()> {
    use ferrokms_server::root_of_trust::{HsmConfig, HsmRole};
    let path = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if args.hsm {
        if HsmConfig::read(&path)?.is_some() {
            bail!(
                "{} already names an HSM (hsm.toml); edit or remove it first",
                path.display()
            );
        }
        if args.pin_file.is_none() == args.pin_env.is_none() {
            bail!("--hsm needs the token's PIN: give --pin-file or --pin-env");
        }
        let (Some(module), Some(token_label)) = (args.module, args.token_label) else {
            bail!("--hsm needs --module and --token-label");
        };
        let config = HsmConfig {
            module,
            token_label,
            slot: args.slot,
            key_label: args.key_label,
            pin_file: args.pin_file,
            pin_env: args.pin_env,
            role: HsmRole::Primary,
        };
        let made = config.make_root_key()?;
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        config.write(&path)?;
        let what = if made { "made" } else { "found" };
        println!(
            "root key {:?} {what} in HSM token {:?}; named in {}",
            config.key_label,
            config.token_label,
            path.join(ferrokms_server::root_of_trust::HSM_CONFIG_FILE)
                .display()
        );
    }
    let data = DataDir::open_exclusive(&path, args.store.as_deref())
        .await
        .with_context(|| format!("opening data directory {}", path.display()))?;
    println!(
        "data directory {}: root key is the {}",
        path.display(),
        data.root_description
    );
    let anchor = data.audit_anchor().await?;
    if let Some(credentials) = data.admin_credentials(&anchor.keys, None).await? {
        println!("admin credentials in {}", credentials.file.display());
    }
    println!(
        "audit signing key {} ({}): keep a copy off this machine for `ferrokms audit verify --public-key`",
        anchor.file.display(),
        anchor.fingerprint
    );
    if args.hsm && path.join("root-key").exists() {
        println!(
            "secrets wrapped under the root-key file still open with it; move them into the \
             HSM with: ferrokms migrate-root-key --to hsm --data-dir {}",
            path.display()
        );
    }
    data.store.close().await;
    Ok(())
}

async fn migrate_root_key(args: MigrateArgs) -> Result<()> {
    use ferrokms_server::root_of_trust::{self, HsmConfig, HsmRole};
    let path = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let Some(mut config) = HsmConfig::read(&path)? else {
        bail!(
            "{} names no HSM: run `ferrokms init --hsm ...` on it first",
            path.display()
        );
    };
    let role = match args.to {
        RootTarget::Hsm => HsmRole::Primary,
        RootTarget::File => HsmRole::Former,
    };
    // New secrets go to the target from now on, before the old ones are moved.
    if config.role != role {
        config.role = role;
        config.write(&path)?;
    }
    let data = DataDir::open_exclusive(&path, args.store.as_deref())
        .await
        .with_context(|| format!("opening data directory {}", path.display()))?;
    let store = data.store.as_ref();
    let keys = data.audit_anchor().await?.keys;
    let changes =
        identities::IdentityChanges::new(ChangeSource::AdminCommand, &data.node_id, keys.clone());
    let moved = root_of_trust::rewrap_all(store, &changes, data.root.as_ref(), args.at_most, |n| {
        eprintln!("rewrapped {n} secrets");
    })
    .await;
    ferrokms_server::audit::chain_now(store, &keys, None, changes.committed())
        .await
        .context("recording the rewrap in the audit trail")?;
    let moved = moved.context("rewrapping")?;
    let left = store
        .secrets_not_in_format(data.root.wrap_format(), 1)
        .await?
        .len();
    data.store.close().await;
    let target = match args.to {
        RootTarget::Hsm => format!(
            "key {:?} in HSM token {:?}",
            config.key_label, config.token_label
        ),
        RootTarget::File => format!("root-key file in {}", path.display()),
    };
    if left > 0 {
        println!("rewrapped {moved} secrets under the {target}; more are left: run again to go on");
        return Ok(());
    }
    println!("rewrapped {moved} secrets; every secret is now under the {target}");
    match args.to {
        RootTarget::Hsm => println!(
            "the root-key file is no longer needed once no backup you keep was made before \
             this move: then shred {}",
            path.join("root-key").display()
        ),
        RootTarget::File => println!(
            "the HSM is no longer needed: remove {} to stop opening it",
            path.join(root_of_trust::HSM_CONFIG_FILE).display()
        ),
    }
    Ok(())
}

async fn xks_proxy(args: XksProxyArgs) -> Result<()> {
    use ferrokms_server::xks::proxy;
    let path = args.config.context("xks-proxy needs --config")?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: proxy::ProxyConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match args.command {
        XksProxyCommand::CreateKey { key_id } => {
            proxy::create_key(&config, &key_id)?;
            println!(
                "external key {key_id} made in token {:?}",
                config.token_label
            );
        }
        XksProxyCommand::Serve => {
            proxy::serve(
                config,
                |addr, path| println!("ferrokms xks-proxy listening on https://{addr}{path}"),
                shutdown_signal(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn doctor(args: DoctorArgs) -> Result<()> {
    let file = read_config(args.config.as_deref())?;
    // With only --endpoint, the node alone; else its data directory (and the node if named).
    let data_dir = match (
        args.data_dir.or(file.data_dir),
        &args.endpoint,
        &args.config,
    ) {
        (Some(dir), _, _) => Some(dir),
        (None, Some(_), None) => None,
        (None, _, _) => Some(PathBuf::from(DEFAULT_DATA_DIR)),
    };
    let subject = doctor::Subject {
        data_dir,
        store: args.store.or(file.store),
        tls_cert: file.tls_cert,
        tls_key: file.tls_key,
        endpoint: args.endpoint,
        ca_bundle: args.ca_bundle,
    };
    let report = doctor::examine(&subject).await;
    report.print();
    if report.problems() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn kubernetes_kms_plugin(args: KubernetesKmsPluginArgs) -> Result<()> {
    use ferrokms_kubernetes::{serve, Credentials, Endpoint, PluginConfig};
    let endpoint = Endpoint::parse(&args.endpoint).map_err(anyhow::Error::msg)?;
    let credentials = match &args.credentials_file {
        Some(file) => Credentials::from_file(file)?,
        None => Credentials::from_lookup(|name| std::env::var(name).ok()).context(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --credentials-file",
        )?,
    };
    let mut encryption_context = std::collections::BTreeMap::new();
    for pair in &args.encryption_context {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--encryption-context {pair:?} is not KEY=VALUE"))?;
        encryption_context.insert(k.to_owned(), v.to_owned());
    }
    let config = PluginConfig {
        socket: args.socket,
        key_id: args.key_id,
        endpoint,
        region: args.region,
        credentials,
        ca_bundle: args.ca_bundle,
        encryption_context,
        insecure_http: args.insecure_http,
    };
    println!(
        "ferrokms kubernetes-kms-plugin listening on unix://{}",
        config.socket.display()
    );
    serve(config, shutdown_signal()).await?;
    Ok(())
}

async fn backup(args: BackupArgs) -> Result<()> {
    use std::io::Write;
    let data = open_beside_server(args.data_dir, args.store.as_deref()).await?;
    let rows = data.store.backup().await?;
    let mut text = serde_json::to_string(&backup::Header::new())?;
    text.push('\n');
    for row in &rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    match &args.out {
        Some(file) => {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
                .with_context(|| format!("writing {}", file.display()))?;
            eprintln!("backed up {} rows to {}", rows.len(), file.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    data.store.close().await;
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<()> {
    let path = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let hsm = path.join(ferrokms_server::root_of_trust::HSM_CONFIG_FILE);
    if !path.join("root-key").is_file() && !hsm.is_file() {
        bail!(
            "{} holds neither a root-key file nor an hsm.toml: copy in the root key of the \
             service that was backed up, or its hsm.toml (backups never hold the root key)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&args.from)
        .with_context(|| format!("reading {}", args.from.display()))?;
    let mut lines = text.lines();
    let header: backup::Header = lines
        .next()
        .map(serde_json::from_str)
        .transpose()?
        .context("the backup is empty")?;
    header.check()?;
    let rows = lines
        .map(serde_json::from_str)
        .collect::<Result<Vec<ferrokms_store::BackupRow>, _>>()
        .context("reading the backup's rows")?;
    let data = DataDir::open_exclusive(&path, args.store.as_deref())
        .await
        .with_context(|| format!("opening data directory {}", path.display()))?;
    ferrokms_server::restore(&data, &rows)
        .await
        .context("restoring the backup")?;
    println!("restored {} rows into {}", rows.len(), path.display());
    data.store.close().await;
    Ok(())
}

mod backup {
    use anyhow::{bail, Result};
    use serde::{Deserialize, Serialize};

    /// The first line of a backup file.
    #[derive(Serialize, Deserialize)]
    pub struct Header {
        #[serde(rename = "ferrokmsBackup")]
        version: u32,
    }

    impl Header {
        pub fn new() -> Self {
            Header { version: 1 }
        }

        pub fn check(&self) -> Result<()> {
            if self.version != 1 {
                bail!(
                    "backup format {} is not one this ferrokms reads",
                    self.version
                );
            }
            Ok(())
        }
    }
}

async fn audit(args: AuditArgs) -> Result<()> {
    let data = open_beside_server(args.data_dir, args.store.as_deref()).await?;
    let store = data.store.as_ref();
    match args.command {
        AuditCommand::Verify {
            public_key,
            digests,
        } => {
            use ferrokms_server::audit::{anchor, verify};
            let given_key = public_key.is_some();
            let key_file = public_key.unwrap_or_else(|| data.path.join(anchor::PUBLIC_KEY_FILE));
            let public = anchor::read_public_key(&key_file).with_context(|| {
                "the public key is read from a file, never from the store: give --public-key"
            })?;
            let copy = match &digests {
                Some(path) => anchor::read_copy(path)?,
                None => Vec::new(),
            };
            let given = verify::Anchor {
                public_key: &public,
                copy: &copy,
            };
            match verify::verify(store, &given).await? {
                verify::Verdict::Intact {
                    events,
                    digests,
                    copied,
                } => {
                    println!(
                        "audit log intact: {events} events, {digests} signed digests checked with {} ({})",
                        key_file.display(),
                        anchor::fingerprint(&public)
                    );
                    if !given_key {
                        println!("the key was read from the data directory, beside the database: compare its fingerprint with the one `init` printed, or give --public-key with your own copy");
                    }
                    if copy.is_empty() {
                        println!("no copy of the digests given (--digests): events cut off the end together with their digests would not show");
                    } else {
                        println!("all {copied} digests of the copy are in the store");
                    }
                }
                verify::Verdict::Broken {
                    seq,
                    event_id,
                    problem,
                } => {
                    data.store.close().await;
                    bail!("audit log broken at event {seq} (eventID {event_id}): {problem}");
                }
            }
        }
        AuditCommand::ExportDigests { dir } => {
            use ferrokms_server::audit::anchor;
            let digests = store.audit_digests().await?;
            anchor::export(&dir, &digests)?;
            let public = anchor::read_public_key(&data.path.join(anchor::PUBLIC_KEY_FILE))?;
            println!(
                "{} digests written to {}; they verify with the key of fingerprint {}",
                digests.len(),
                dir.join(anchor::DIGESTS_FILE).display(),
                anchor::fingerprint(&public)
            );
        }
        AuditCommand::Export { since, key } => {
            let since = match since {
                Some(s) => Some(
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))?
                        .unix_timestamp()
                        * 1000,
                ),
                None => None,
            };
            let mut after = 0;
            loop {
                let batch = store.audit_events(after, 1000).await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for r in &batch {
                    let in_time = since.is_none_or(|s| r.event_time >= s);
                    let names_key = key.as_ref().is_none_or(|k| r.resources.contains(k));
                    if in_time && names_key {
                        println!("{}", r.event);
                    }
                }
            }
        }
    }
    data.store.close().await;
    Ok(())
}
