//! The CUDA compiler as the runtime sets it up on an H200 (sm_90: fast math, the fast `tanh`,
//! grid constants), without a GPU: tests transpile the kernels with it and read their source.

use std::sync::Arc;

use cubecl::cuda::{CudaCompilationOptions, CudaCompiler};
use cubecl::ir::{DeviceIdentity, HardwareProperties, MemoryDeviceProperties};
use cubecl::prelude::*;
use cubecl::{Compiler, CubeKernel};

/// The device properties and compilation options of an H200.
pub(crate) fn sm90() -> (Arc<DeviceProperties>, CudaCompilationOptions) {
    let mut properties = DeviceProperties::new(
        Default::default(),
        MemoryDeviceProperties::new(u64::MAX, 256),
        HardwareProperties {
            load_width: 128,
            vector_register_count: None,
            plane_size_min: 32,
            plane_size_max: 32,
            max_bindings: 32,
            max_shared_memory_size: 232_448,
            max_cube_count: (i32::MAX as u32, 65_535, 65_535),
            max_units_per_cube: 1024,
            max_cube_dim: (1024, 1024, 64),
            num_streaming_multiprocessors: Some(132),
            num_tensor_cores: Some(4),
            min_tensor_cores_dim: Some(8),
            num_cpu_cores: None,
            last_level_cache_size: None,
            max_vector_size: VectorSize::MAX,
            cube_mma_reserved_shared_memory: 0,
        },
        cubecl::profile::TimingMethod::Device,
        DeviceIdentity {
            name: "offline sm_90".to_string(),
            fingerprint: "offline".to_string(),
            physical: None,
        },
    );
    cubecl_cpp::register_supported_types(&mut properties);
    let mut options = CudaCompilationOptions::default();
    let features = &mut options.cpp.supports_features;
    (
        features.fast_math,
        features.fast_tanh,
        features.grid_constants,
    ) = (true, true, true);
    (Arc::new(properties), options)
}

/// A tensor argument as a kernel is compiled for it.
pub(crate) fn tensor_arg() -> TensorCompilationArg {
    TensorCompilationArg {
        meta: TensorMetaCompilationArg { len: (), rank: () },
        buffer: BufferCompilationArg { inplace: None },
    }
}

/// The CUDA C++ of `kernel`, written to `$PINN_DUMP_KERNELS/<name>.cu` when that is set.
pub(crate) fn cuda_source(
    kernel: impl CubeKernel,
    options: &CudaCompilationOptions,
    name: &str,
) -> String {
    let source = CudaCompiler::default()
        .compile(kernel.define(), options)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .to_string();
    if let Some(dir) = std::env::var_os("PINN_DUMP_KERNELS").map(std::path::PathBuf::from) {
        std::fs::create_dir_all(&dir).expect("dump folder");
        std::fs::write(dir.join(format!("{name}.cu")), &source).expect("dump");
    }
    source
}
