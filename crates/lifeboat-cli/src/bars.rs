//! Progress bars on stderr for the repository's long operations, drawn with indicatif: the
//! CLI's [`ProgressDisplay`], used only when stderr is a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_repo::{ProgressDisplay, ProgressIndicator, ProgressKind};

#[derive(Debug)]
pub(crate) struct Bars;

#[derive(Debug)]
struct Bar(ProgressBar);

impl ProgressIndicator for Bar {
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_prefix(title.to_owned());
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ProgressDisplay for Bars {
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressIndicator> {
        let template = match kind {
            ProgressKind::Spinner => "{spinner} {prefix} {elapsed}",
            ProgressKind::Counter => "{spinner} {prefix} {pos}/{len} {elapsed}",
            ProgressKind::Bytes => "{spinner} {prefix} {bytes} {binary_bytes_per_sec} {elapsed}",
        };
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            )
            .with_prefix(title.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(Bar(bar))
    }
}
