//! Progress reporting while training (a progress bar, Ctrl-C).

/// Receives progress while training (the CLI draws a progress bar).
pub trait Progress {
    /// Called after every iteration with the total loss.
    fn iteration(&mut self, iteration: usize, loss: f64);
    /// Called once at the end.
    fn finish(&mut self) {}
    /// Polled every iteration: `true` stops training after a checkpoint (e.g. on Ctrl-C).
    fn should_stop(&self) -> bool {
        false
    }
}

/// No progress output.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn iteration(&mut self, _: usize, _: f64) {}
}
