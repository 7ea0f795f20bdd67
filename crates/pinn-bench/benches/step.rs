//! One Adam training step (Taylor-mode forward, backward, update) of the shipped problems.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use pinn::{DeviceKind, Mode, Trainer};
use pinn_bench::{PROBLEMS, Workspace};

/// Same allocator as the `pinn` binary, so timings match real runs.
#[global_allocator]
static ALLOCATOR: pinn_bench::allocator::Allocator = pinn_bench::allocator::Allocator {};

fn training_step(c: &mut Criterion) {
    pinn_bench::allocator::keep_freed_memory();
    let mut group = c.benchmark_group("training_step");
    group.sample_size(20);
    let workspace = Workspace::from_current_dir(None).unwrap_or_else(|e| panic!("{e}"));
    for name in PROBLEMS {
        for mode in [Mode::Fused, Mode::Eager] {
            let problem = match workspace.load_problem(name, DeviceKind::Cpu, mode) {
                Ok(p) => p,
                Err(e) => panic!("cannot load {name}: {e}"),
            };
            let mut trainer = Trainer::new(&problem);
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| {
                    let (loss, _) = trainer.step();
                    std::hint::black_box(loss.into_scalar::<f32>())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, training_step);
criterion_main!(benches);
