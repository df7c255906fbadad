use anyhow::Context;
use clap::Parser;
use ecs_emulator::app::App;
use ecs_emulator::config::{Command, Config, LogFormat};
use ecs_emulator::{operations_doc, server};
use tracing_subscriber::EnvFilter;

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
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let app = App::new(config).context("cannot open the state store")?;
        println!("ecs-emulator ready on http://{addr}");
        let controllers = app.clone();
        tokio::spawn(async move { controllers.start_controllers(addr).await });
        let efs = app.efs.clone();
        let served = server::run(listener, app, shutdown_signal()).await;
        // Unmount every EFS mount before exiting (their containers are left to Docker).
        if let Some(efs) = efs {
            let _ = tokio::task::spawn_blocking(move || efs.release_all()).await;
        }
        served?;
        Ok(())
    })
}
