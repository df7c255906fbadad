//! The running emulator: configuration, state store, clock and every service.

use crate::clock::Clock;
use crate::config::Config;
use crate::services::{self, Deps, Registry};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Instant;

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub clock: Clock,
    pub registry: Registry,
    pub started: Instant,
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, StoreError> {
        let store = if config.ephemeral {
            Store::memory()
        } else {
            Store::open(&config.data_dir())?
        };
        let clock = Clock::new(config.time_scale);
        let registry = services::build(&Deps {
            store: store.clone(),
            clock: clock.clone(),
            config: config.clone(),
        });
        Ok(Arc::new(App {
            config,
            store,
            clock,
            registry,
            started: Instant::now(),
        }))
    }
}
