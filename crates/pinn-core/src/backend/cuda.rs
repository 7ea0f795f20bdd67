//! Opening Burn's CUDA device: a probe that turns a missing driver into an error instead of a
//! panic deep inside the runtime, and the process-wide kernel-fusion switch of the modes (shared
//! with wgpu).

use burn::tensor::Device;

use super::ExecutionPlan;

/// Opens CUDA device 0 for `plan`, or says why it cannot.
#[cfg(feature = "cuda")]
pub(super) fn open(plan: &ExecutionPlan) -> Result<Device, String> {
    probe()?;
    configure_fusion(plan)?;
    Ok(Device::cuda(0))
}

/// Without the `cuda` feature there is no CUDA backend to open.
#[cfg(not(feature = "cuda"))]
pub(super) fn open(_plan: &ExecutionPlan) -> Result<Device, String> {
    Err("this build has no CUDA support (rebuild with `--features cuda`)".into())
}

/// Checks that the driver and NVRTC libraries load and that there is a device, before Burn's
/// runtime (which panics on each of these) is touched.
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
fn probe() -> Result<(), String> {
    use cudarc::{driver, nvrtc};

    // SAFETY: each call only tries to load a shared library by its usual names and reports
    // whether one loaded; nothing from it is called here.
    let (has_driver, has_nvrtc) = unsafe {
        (
            driver::sys::is_culib_present(),
            nvrtc::sys::is_culib_present(),
        )
    };
    if !has_driver {
        return Err("the NVIDIA driver library (libcuda) was not found on this machine".into());
    }
    if !has_nvrtc {
        return Err(
            "the NVRTC library (libnvrtc, part of the CUDA toolkit) was not found; \
             kernels are compiled with it at run time"
                .into(),
        );
    }
    driver::result::init().map_err(|e| format!("the CUDA driver did not initialise: {e}"))?;
    let count = driver::result::device::get_count()
        .map_err(|e| format!("cannot count CUDA devices: {e}"))?;
    if count < 1 {
        return Err("the CUDA driver reports no device".into());
    }
    Ok(())
}

/// Burn reads its fusion settings once per process: the modes without fusion (`eager`, `amp`,
/// `graph`, `graph+amp`) cap fusion exploration at zero, so every operation runs as its own
/// kernel; the fused ones keep Burn's default.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(super) fn configure_fusion(plan: &ExecutionPlan) -> Result<(), String> {
    use burn::BurnConfig;
    use cubecl_environment::config::RuntimeConfig;

    let unfused = !plan.burn_fusion();
    let mode = plan.mode();
    let text = if unfused {
        "[fusion.beam_search]\nmax_explorations = 0\n"
    } else {
        ""
    };
    let config: BurnConfig =
        toml::from_str(text).map_err(|e| format!("Burn configuration: {e}"))?;
    if BurnConfig::try_set(config) {
        return Ok(());
    }
    let fused_now = burn::runtime_config().fusion().beam_search.max_explorations != Some(0);
    if fused_now == unfused {
        return Err(format!(
            "this process already runs a GPU with fusion {}; run mode `{mode}` in its own process",
            if fused_now { "on" } else { "off" }
        ));
    }
    Ok(())
}
