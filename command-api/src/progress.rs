//! Progress bars over events for the command line (`rebuild`, `replay`,
//! `stats`, `bench projections`), drawn on stderr.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use projections::Progress;

/// Interval of the bar's redraws while nothing reports progress.
const STEADY_TICK: Duration = Duration::from_millis(200);

/// A progress bar over events, drawn on stderr (hidden when it is not a
/// terminal), or a hidden one when `visible` is false.
pub fn events_bar(verb: &str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let template = format!(
        "{{spinner}} {verb} [{{bar:40}}] {{pos}}/{{len}} events ({{per_sec}}, eta {{eta}})"
    );
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(STEADY_TICK);
    bar
}

/// The fold's progress callback driving `bar`.
pub fn bar_progress(bar: &ProgressBar) -> Progress {
    let bar = bar.clone();
    Arc::new(move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
}
