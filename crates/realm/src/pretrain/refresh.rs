//! The refresher: the index in use ([`Snapshot`]) and the background thread that
//! re-embeds the corpus from a copy of the doc tower while training goes on (REALM's
//! asynchronous index refresh).

use std::sync::mpsc;

use burn::prelude::*;
use ragl_model::bert::Bert;
use ragl_model::encode::embed_encoded;
use ragl_model::tokenizer::Encoded;

use super::config::{PretrainModel, RefreshConfig};
use super::model::host;
use crate::{Error, Result};

/// The index in use: every passage's vector from the doc tower of step `step`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub step: u64,
    pub dim: usize,
    pub vectors: Vec<f32>,
}

/// Embeds the whole corpus with `doc` (no gradient), in length-sorted batches.
pub fn embed_corpus<B: Backend>(
    doc: &Bert<B>,
    encs: &[Encoded],
    m: &PretrainModel,
    pad_id: u32,
    batch: usize,
    device: &B::Device,
) -> Vec<f32> {
    let d = doc.hidden_size();
    let mut order: Vec<usize> = (0..encs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encs[i].ids.len()));
    let mut out = vec![0f32; encs.len() * d];
    for chunk in order.chunks(batch.max(1)) {
        let refs: Vec<&Encoded> = chunk.iter().map(|&i| &encs[i]).collect();
        let v: Vec<f32> = host(embed_encoded(
            doc,
            &refs,
            pad_id,
            m.pooling,
            m.normalize,
            device,
        ));
        for (r, &i) in chunk.iter().enumerate() {
            out[i * d..(i + 1) * d].copy_from_slice(&v[r * d..(r + 1) * d]);
        }
    }
    out
}

/// A refresh the background thread is working on.
pub(crate) struct Refresher<B: Backend> {
    jobs: mpsc::Sender<(u64, Bert<B>)>,
    done: mpsc::Receiver<Snapshot>,
    busy: bool,
    /// The step of the snapshot being re-embedded.
    pending: u64,
}

impl<B: Backend> Refresher<B> {
    /// The finished refresh to swap in before step `step + 1`, if any: as soon as it is
    /// done (`swap_after = 0`, REALM's way, never waiting), or at exactly `swap_after` steps
    /// after its snapshot, waiting for it there; with the seconds waited.
    pub(crate) fn poll(&mut self, step: u64, swap_after: u64) -> Result<Option<(Snapshot, f64)>> {
        if !self.busy {
            return Ok(None);
        }
        let got = if swap_after == 0 {
            self.done.try_recv().ok().map(|s| (s, 0.0))
        } else if step + 1 >= self.pending + swap_after {
            let w = std::time::Instant::now();
            let s = self.done.recv().map_err(|_| stopped())?;
            Some((s, w.elapsed().as_secs_f64()))
        } else {
            None
        };
        if got.is_some() {
            self.busy = false;
        }
        Ok(got)
    }

    /// Starts re-embedding the corpus with `doc()`, a copy of the doc tower after step
    /// `step`; false (and no copy made) while the previous refresh is still running.
    pub(crate) fn start(&mut self, step: u64, doc: impl FnOnce() -> Bert<B>) -> Result<bool> {
        if self.busy {
            return Ok(false);
        }
        self.jobs.send((step, doc())).map_err(|_| stopped())?;
        self.busy = true;
        self.pending = step;
        Ok(true)
    }
}

fn stopped() -> Error {
    Error::Worker("the refresh thread stopped".into())
}

pub(crate) fn spawn_refresher<B: Backend>(
    corpus: std::sync::Arc<Vec<Encoded>>,
    m: PretrainModel,
    pad: u32,
    r: &RefreshConfig,
    device: B::Device,
) -> Result<Refresher<B>>
where
    Bert<B>: Send + 'static,
{
    // The re-embedding's parallel work (the CPU encoder's and burn-flex's rayon loops) runs
    // in whichever pool it is installed in; its own pool caps its share of the cores.
    let pool = match r.threads {
        0 => None,
        n => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("ragl-refresh-{i}"))
                .build()
                .map_err(|e| Error::Worker(format!("refresh.threads = {n}: {e}")))?,
        ),
    };
    let batch = r.batch_size;
    let (jobs, rx) = mpsc::channel::<(u64, Bert<B>)>();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((step, doc)) = rx.recv() {
            let dim = doc.hidden_size();
            let embed = || embed_corpus(&doc, &corpus, &m, pad, batch, &device);
            let vectors = match &pool {
                Some(p) => p.install(embed),
                None => embed(),
            };
            if tx.send(Snapshot { step, dim, vectors }).is_err() {
                break;
            }
        }
    });
    Ok(Refresher {
        jobs,
        done,
        busy: false,
        pending: 0,
    })
}
