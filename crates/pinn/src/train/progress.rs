//! Progress reporting while training (a progress bar, Ctrl-C).

/// Receives progress while training (the CLI draws a progress bar), and can stop it.
///
/// A run stopped by [`Progress::should_stop`] writes its checkpoint and returns
/// [`TrainError::Interrupted`](crate::TrainError::Interrupted);
/// [`Trainer::resume`](crate::Trainer::resume) continues it, and the result is the same, bit
/// for bit, as a run that was never stopped.
///
/// ```
/// use pinn::{Progress, ProblemBuilder, TrainError, Trainer};
///
/// /// Logs every 100th loss and asks to stop at iteration `stop_at`.
/// struct LogAndStop {
///     stop_at: usize,
///     seen: Vec<(usize, f64)>,
///     last: usize,
/// }
///
/// impl Progress for LogAndStop {
///     fn iteration(&mut self, iteration: usize, loss: f64) {
///         self.last = iteration;
///         if iteration.is_multiple_of(100) {
///             self.seen.push((iteration, loss));
///         }
///     }
///     fn should_stop(&self) -> bool {
///         self.last + 1 >= self.stop_at // polled before each iteration is reported
///     }
/// }
///
/// let problem = ProblemBuilder::new("decay")
///     .domain(&["t"], &[0.0], &[1.0])
///     .network(&[16], &["u"])
///     .residual("f", "u_t + u")
///     .points_on("start", &[("t", &[0.0])], 1)
///     .points_lhs("inside", 64)
///     .fit_value("start", "u", 1.0)
///     .residual_loss("inside", &["f"])
///     .adam(500, 1e-2)
///     .build()?;
/// let out = std::env::temp_dir().join("pinn-doc-progress");
/// let mut progress = LogAndStop { stop_at: 300, seen: Vec::new(), last: 0 };
/// match Trainer::new(&problem).run(500, &out, &mut progress) {
///     Err(TrainError::Interrupted { iteration, .. }) => assert_eq!(iteration, 300),
///     other => panic!("expected a stop at 300, got {:?}", other.map(|t| t.report)),
/// }
/// assert_eq!(progress.seen.len(), 2); // iterations 100 and 200
///
/// // Continue from the checkpoint in `out` up to iteration 500.
/// let resumed = Trainer::resume(&problem, &out)?;
/// assert_eq!(resumed.start_iteration(), 300);
/// let trained = resumed.run(500, &out, &mut pinn::Silent)?;
/// assert_eq!(trained.report.iterations, 500);
/// # std::fs::remove_dir_all(&out).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
