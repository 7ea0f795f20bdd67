//! The CPU kernels: plain functions over slices, multi-threaded with rayon, that the backend
//! ops wire into Burn. `numeric` is the element type, `tasks` the scheduling-independent split
//! into parallel tasks, `rule` a fused activation's compiled rule, `jet_layer` the fused jet
//! layer (forward and backward), `dense` plain products, `matmul` the product kernel under
//! them, `irk_misfit` the discrete-time loss term, and `unrolled` the rule as the product lists
//! GPU kernels are generated from.

mod dense;
pub mod irk_misfit;
mod jet_layer;
pub mod matmul;
mod numeric;
mod rule;
mod tasks;
pub mod unrolled;

pub use dense::{dense_backward, dense_forward};
pub use jet_layer::{
    LayerGradients, Stacked, activation_backward, activation_forward, layer_backward, layer_forward,
};
pub use numeric::Real;
pub use rule::JetActivation;
pub(crate) use tasks::{even_row_tasks, written_by};
