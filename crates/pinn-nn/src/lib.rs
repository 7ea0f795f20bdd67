//! Networks for physics-informed training: a fully connected network whose forward pass
//! propagates Taylor-mode jets of input derivatives.

mod init;
mod mlp;

pub use init::Init;
pub use mlp::{Mlp, MlpSpec};
