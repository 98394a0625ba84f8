//! The one place where the concrete burn backend is chosen. Library crates are generic over
//! `B: Backend`; the CLI picks `Flex` on the CPU, or `Cuda` when built with `--features cuda`
//! and asked for `--device cuda[:N]`.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Distribution, ElementConversion, Tensor, backend::Backend};

/// `--device cpu | cuda | cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// Data-parallel training workers: one per CPU thread (burn-flex keeps one graph on
    /// about one core); a GPU runs the batch whole.
    pub fn training_workers(self) -> usize {
        match self {
            DeviceSpec::Cpu => rayon::current_num_threads(),
            DeviceSpec::Cuda(_) => 1,
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: use cpu, cuda or cuda:N")),
        }
    }
}

/// Runs `$body` with `$B` bound to the backend type and `$dev` to the device that
/// `$spec` names; CUDA only in builds with the `cuda` feature.
macro_rules! with_device {
    ($spec:expr, $B:ident, $dev:ident, $body:expr) => {
        match $spec {
            $crate::backend::DeviceSpec::Cpu => {
                type $B = burn::backend::Flex;
                let $dev = burn::backend::flex::FlexDevice;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(i) => {
                type $B = burn::backend::Cuda;
                let $dev = burn::backend::cuda::CudaDevice::new(i);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceSpec::Cuda(_) => $crate::bad_input!(
                "this ragl was built without CUDA; rebuild with `cargo build --release --features cuda`"
            ),
        }
    };
}
pub(crate) use with_device;

#[derive(clap::Args)]
pub struct DeviceArgs {
    /// Device to check: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Size of the square matmul used as a check.
    #[arg(long, default_value_t = 1024)]
    size: usize,
}

pub fn run(a: DeviceArgs) -> Result<()> {
    match a.device {
        DeviceSpec::Cpu => {
            check::<burn::backend::Flex>(&Default::default(), "cpu (burn-flex)", a.size)
        }
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(i) => check::<burn::backend::Cuda>(
            &burn::backend::cuda::CudaDevice::new(i),
            &format!("cuda:{i} (burn-cuda)"),
            a.size,
        ),
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => crate::bad_input!(
            "this ragl was built without CUDA; rebuild with `cargo build --release --features cuda`"
        ),
    }
}

/// Multiplies two random matrices a few times and checks A·I = A, reporting GFLOP/s. The
/// tolerance allows for TF32 tensor-core matmuls on GPUs (10 mantissa bits: relative error
/// about 1e-3).
fn check<B: Backend>(device: &B::Device, name: &str, n: usize) -> Result<()> {
    let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let eye = Tensor::<B, 2>::eye(n, device);
    let err: f32 = (a.clone().matmul(eye) - a.clone())
        .abs()
        .max()
        .into_scalar()
        .elem();
    anyhow::ensure!(err < 1e-2, "{name}: A·I differs from A by {err}");
    let reps = 5;
    let _ = a.clone().matmul(a.clone()).sum().into_scalar(); // warm-up
    let t = Instant::now();
    for _ in 0..reps {
        let _ = a.clone().matmul(a.clone()).sum().into_scalar();
    }
    let secs = t.elapsed().as_secs_f64();
    let gflops = reps as f64 * 2.0 * (n as f64).powi(3) / secs / 1e9;
    println!("device: {name}\nmatmul {n}x{n}: ok (max |A·I - A| = {err:.1e}), {gflops:.1} GFLOP/s");
    Ok(())
}
