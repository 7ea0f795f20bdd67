//! Opening Burn's wgpu device: the system's default adapter (a Vulkan, Metal or DirectX GPU, or
//! Mesa's lavapipe on a machine without one), with the modes' kernel-fusion switch.

use burn::tensor::Device;

use super::ExecutionPlan;

/// Opens the default wgpu adapter for `plan`, or says why it cannot.
#[cfg(feature = "wgpu")]
pub(super) fn open(plan: &ExecutionPlan) -> Result<Device, String> {
    super::cuda::configure_fusion(plan)?;
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    probe(&device)?;
    Ok(device)
}

/// Without the `wgpu` feature there is no wgpu backend to open.
#[cfg(not(feature = "wgpu"))]
pub(super) fn open(_plan: &ExecutionPlan) -> Result<Device, String> {
    Err("this build has no wgpu support (rebuild with `--features wgpu`)".into())
}

/// Creates and reads back one value: wgpu picks its adapter lazily and panics when there is
/// none, so this turns that into an error before a run starts.
#[cfg(feature = "wgpu")]
fn probe(device: &Device) -> Result<(), String> {
    let device = device.clone();
    std::panic::catch_unwind(move || {
        burn::tensor::Tensor::<1>::from_floats([1.0], &device)
            .into_data()
            .try_into_vec::<f32>()
            .ok()
    })
    .ok()
    .flatten()
    .map(|_| ())
    .ok_or_else(|| "no usable wgpu adapter (GPU, or a Vulkan driver such as Mesa's)".into())
}
