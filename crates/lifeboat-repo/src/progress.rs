//! Progress of long repository operations, reported to whoever runs them: the CLI draws bars
//! on a terminal, the daemon and the tests report nothing. This crate draws nothing itself.

use std::sync::Arc;

use rustic_core::{ProgressBars, ProgressType, RusticProgress};

/// What a progress indicator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// Something is happening; no count.
    Spinner,
    /// Items done out of a known number.
    Counter,
    /// Bytes done, and their rate.
    Bytes,
}

/// Shows the progress of repository operations; the caller of [`crate::Repo`] implements it.
pub trait ProgressDisplay: Send + Sync + std::fmt::Debug + 'static {
    /// A new indicator for one operation, titled `title` (e.g. `reading pack data...`).
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressIndicator>;
}

/// One operation's indicator, as [`ProgressDisplay::start`] made it.
pub trait ProgressIndicator: Send + Sync + std::fmt::Debug + 'static {
    fn set_length(&self, len: u64);
    fn set_title(&self, title: &str);
    fn inc(&self, n: u64);
    /// The operation is over: the indicator may disappear.
    fn finish(&self);
}

/// Where a repository reports its progress: nowhere ([`Progress::hidden`], the default) or a
/// [`ProgressDisplay`].
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<Arc<dyn ProgressDisplay>>);

impl Progress {
    /// Reports nothing.
    #[must_use]
    pub const fn hidden() -> Self {
        Self(None)
    }

    /// Reports to `display`.
    #[must_use]
    pub fn to(display: Arc<dyn ProgressDisplay>) -> Self {
        Self(Some(display))
    }
}

/// rustic's side of an indicator.
#[derive(Debug)]
struct Indicator(Box<dyn ProgressIndicator>);

impl RusticProgress for Indicator {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_title(title);
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

impl ProgressBars for Progress {
    fn progress(&self, progress_type: ProgressType, prefix: &str) -> rustic_core::Progress {
        let Some(display) = &self.0 else {
            return rustic_core::Progress::hidden();
        };
        let kind = match progress_type {
            ProgressType::Spinner => ProgressKind::Spinner,
            ProgressType::Counter => ProgressKind::Counter,
            ProgressType::Bytes => ProgressKind::Bytes,
        };
        rustic_core::Progress::new(Indicator(display.start(kind, prefix)))
    }
}
