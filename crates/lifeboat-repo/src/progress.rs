//! Progress bars for long repository operations: indicatif on a terminal, nothing otherwise.

use std::{borrow::Cow, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};

/// Whether to draw progress bars (on stderr). The CLI chooses `Bars` only on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    #[default]
    Hidden,
    Bars,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bars(ProgressMode);

#[derive(Debug)]
struct Bar(ProgressBar);

impl RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_prefix(Cow::Owned(title.to_owned()));
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ProgressBars for Bars {
    fn progress(&self, progress_type: ProgressType, prefix: &str) -> Progress {
        if self.0 == ProgressMode::Hidden {
            return Progress::hidden();
        }
        let template = match progress_type {
            ProgressType::Spinner => "{spinner} {prefix} {elapsed}",
            ProgressType::Counter => "{spinner} {prefix} {pos}/{len} {elapsed}",
            ProgressType::Bytes => "{spinner} {prefix} {bytes} {binary_bytes_per_sec} {elapsed}",
        };
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            )
            .with_prefix(prefix.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::new(Bar(bar))
    }
}

pub(crate) const fn bars(mode: ProgressMode) -> Bars {
    Bars(mode)
}
