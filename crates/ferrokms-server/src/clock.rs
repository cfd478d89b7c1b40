//! The service's clock: system time plus an offset. Only the dev-mode debug endpoint moves the
//! offset, so that tests can see "30 days later" in milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};

use ferrokms_core::key::Millis;

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> Millis {
        crate::bootstrap::now_millis() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// The service's time at the system time `wall`, so that one reading serves a request.
    pub fn at(&self, wall: std::time::SystemTime) -> Millis {
        let ms = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ms + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock forward (never back, so no deadline is passed twice).
    pub fn advance(&self, ms: i64) -> Millis {
        self.offset_ms.fetch_add(ms.max(0), Ordering::Relaxed);
        self.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_only() {
        let clock = Clock::default();
        let before = clock.now();
        let after = clock.advance(86_400_000);
        assert!(after >= before + 86_400_000);
        clock.advance(-5_000_000_000);
        assert!(clock.now() >= after);
    }
}
