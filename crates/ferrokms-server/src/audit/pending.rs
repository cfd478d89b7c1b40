//! The record a request's writes carry, made at its first write: a request that changes
//! nothing (every cryptographic call) builds and seals no intent record.

use std::sync::{Arc, OnceLock};

use ferrokms_store::Intent;

pub struct PendingIntent<'a> {
    made: OnceLock<Arc<Intent>>,
    make: &'a (dyn Fn() -> Arc<Intent> + Send + Sync),
}

impl<'a> PendingIntent<'a> {
    pub fn new(make: &'a (dyn Fn() -> Arc<Intent> + Send + Sync)) -> Self {
        PendingIntent {
            made: OnceLock::new(),
            make,
        }
    }

    /// The intent, made now if no write needed it before.
    pub fn get(&self) -> &Intent {
        self.made.get_or_init(|| (self.make)())
    }

    /// Whether a write of this request committed, and with it the intent.
    pub fn written(&self) -> bool {
        self.made.get().is_some_and(|i| i.written())
    }
}
