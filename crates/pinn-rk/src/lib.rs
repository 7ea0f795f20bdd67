//! Gauss-Legendre implicit Runge-Kutta (IRK) Butcher tables for the discrete-time models.
//!
//! The discrete-time maps themselves arrive with the discrete-time problems; this crate
//! currently provides the tables.

mod gauss_legendre;

pub use gauss_legendre::{ButcherTable, stages_for_step};
