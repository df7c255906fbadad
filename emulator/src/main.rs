use anyhow::Context;
use clap::Parser;
use ecs_emulator::app::App;
use ecs_emulator::config::{Command, Config, LogFormat};
use ecs_emulator::{operations_doc, server};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

// mimalloc: the proxy and the API allocate small, short-lived buffers on every request, which
// glibc's malloc serves markedly slower across threads (docs/benchmarks.md, "ALB data plane").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
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
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if let Some(result) = ecs_emulator::cli::run(&config) {
        return result;
    }
    if let Some(Command::Operations) = config.command {
        let app = App::new(Config {
            ephemeral: true,
            ..config
        })?;
        print!("{}", operations_doc::render(&app.registry));
        return Ok(());
    }
    // Before anything can start a thread: setns into a mount namespace needs a single thread.
    if let Some(Command::EfsGraft {
        source,
        pid,
        target,
        read_only,
    }) = &config.command
    {
        return ecs_emulator::efs::adopt::graft(source, *pid, target, *read_only).with_context(
            || {
                format!(
                    "efs-graft {} into {pid} at {}",
                    source.display(),
                    target.display()
                )
            },
        );
    }
    init_logging(&config);
    if let Some(Command::EfsReaper { base }) = &config.command {
        ecs_emulator::efs::mounts::reap(base);
        return Ok(());
    }
    if let Some(Command::EfsMount {
        backing,
        mountpoint,
        posix_user,
        read_only,
    }) = &config.command
    {
        return ecs_emulator::efs::mount_foreground(
            backing,
            mountpoint,
            posix_user.as_deref(),
            *read_only,
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(config));
    // Whatever is still running (a Docker call, a blocking task) is dropped: the process must
    // be gone within SHUTDOWN_BUDGET of the signal. Containers are left to Docker.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// How long in-flight calls get to finish after SIGTERM (the process exits within 2 s).
const DRAIN_BUDGET: Duration = Duration::from_millis(1200);

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = App::new(config).context("cannot open the state store")?;
    // Before any controller starts: the agents resolve ECR image names to this port.
    app.listening_on(addr);
    let given = app
        .config
        .admin_token
        .as_deref()
        .is_some_and(|t| !t.is_empty());
    if app.config.strict_auth && !given {
        if let Some(token) = &app.admin_token {
            eprintln!("ecs-emulator admin token (the control API, /_emulator/*): {token}");
        }
    }
    println!("ecs-emulator ready on http://{addr}");
    let controllers = app.clone();
    tokio::spawn(
        app.shutdown()
            .run_until(async move { controllers.start_controllers(addr).await }),
    );
    let signalled = app.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signalled.begin_shutdown();
    });
    let efs = app.efs.clone();
    let shutdown = app.shutdown();
    let mut server = tokio::spawn(server::run(listener, app, shutdown.clone().wait()));
    let joined = |r: Result<std::io::Result<()>, tokio::task::JoinError>| match r {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("the server task failed: {e}")),
    };
    let served = tokio::select! {
        r = &mut server => joined(r),
        _ = shutdown.wait() => {
            // The listeners stopped accepting; calls in flight get DRAIN_BUDGET to finish
            // (long-lived ones, a dashboard's event stream, are cut then).
            match tokio::time::timeout(DRAIN_BUDGET, &mut server).await {
                Ok(r) => joined(r),
                Err(_) => {
                    tracing::info!("calls still open after the drain budget are cut");
                    Ok(())
                }
            }
        }
    };
    // Unmount every EFS mount before exiting (their containers are left to Docker).
    if let Some(efs) = efs {
        let release = tokio::task::spawn_blocking(move || efs.exit());
        let _ = tokio::time::timeout(Duration::from_millis(400), release).await;
    }
    served
}
