//! Data-parallel gradient steps on the CPU.
//!
//! burn-flex runs most of the element-wise work of one autodiff graph on one core, so one
//! training step keeps about one of this machine's two cores busy. Splitting a batch
//! between threads, each differentiating its own copy of the model, and summing the
//! gradients gives the same update with both cores working. `ragl mt train` and `ragl
//! finetune-qa` both step this way.

use std::collections::HashSet;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Runs `run` on every part, each on its own thread with its own autodiff copy of `model`
/// (the model itself when there is one part), and returns the parts' outputs in order with
/// the sum of their gradients. `run` must scale its loss so that the sum over parts is the
/// whole batch's loss (divide by the whole batch's count, not the part's).
///
/// A worker's copy requires gradients exactly where `model` does, so frozen parameters
/// (a fixed query tower, say) stay frozen.
pub fn data_parallel<B, M, P, T>(
    model: &M,
    parts: &[P],
    run: impl Fn(&M, &P) -> (T, GradientsParams) + Sync,
) -> (Vec<T>, GradientsParams)
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: Send,
    P: Sync,
    T: Send,
{
    assert!(!parts.is_empty(), "data_parallel needs at least one part");
    if parts.len() == 1 {
        let (t, g) = run(model, &parts[0]);
        return (vec![t], g);
    }
    let mut trainable = TrainableIds::default();
    model.visit(&mut trainable);
    let inner = model.valid();
    let results: Vec<(T, GradientsParams)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                let inner = inner.clone();
                let (run, ids) = (&run, &trainable.0);
                s.spawn(move || {
                    // `from_inner` gives leaves without the trainable flag: set it back
                    // where the original has it.
                    let m = M::from_inner(inner).map(&mut Restore(ids));
                    run(&m, part)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("training worker"))
            .collect()
    });
    let mut outs = Vec::with_capacity(results.len());
    let mut sum: Option<GradientsParams> = None;
    for (t, mut g) in results {
        outs.push(t);
        match sum.as_mut() {
            None => sum = Some(g),
            Some(into) => model.visit(&mut SumGrads::<B> {
                into,
                from: &mut g,
                _b: std::marker::PhantomData,
            }),
        }
    }
    (outs, sum.expect("at least one part"))
}

#[derive(Default)]
struct TrainableIds(HashSet<ParamId>);

impl<B: Backend> ModuleVisitor<B> for TrainableIds {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        if p.val().is_require_grad() {
            self.0.insert(p.id);
        }
    }
}

struct Restore<'a>(&'a HashSet<ParamId>);

impl<B: AutodiffBackend> ModuleMapper<B> for Restore<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let on = self.0.contains(&p.id);
        p.set_require_grad(on)
    }
}

struct SumGrads<'a, B: AutodiffBackend> {
    into: &'a mut GradientsParams,
    from: &'a mut GradientsParams,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let id = p.id;
        if let Some(g2) = self.from.remove::<B::InnerBackend, D>(id) {
            let sum = match self.into.remove::<B::InnerBackend, D>(id) {
                Some(g1) => g1 + g2,
                None => g2,
            };
            self.into.register::<B::InnerBackend, D>(id, sum);
        }
    }
}
