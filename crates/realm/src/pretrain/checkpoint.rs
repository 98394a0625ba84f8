//! Pretraining checkpoints: the model, both AdamW states, the step and the index in use,
//! written atomically with a manifest and refused when foreign or damaged.

use std::path::Path;

use burn::module::Module as _;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder as _};
use burn::tensor::backend::AutodiffBackend;
use ragl_reader::mlm::MlmReader;
use serde::{Deserialize, Serialize};

use super::model::{Configs, Realm};
use super::refresh::Snapshot;
use crate::{Error, Result};

type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

const CKPT_KIND: &str = "realm-pretrain-checkpoint";
const CKPT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CkptState {
    pub step: u64,
    pub snapshot_step: u64,
    pub dim: usize,
    pub refreshes: u64,
    pub elapsed_secs: f64,
    pub configs: Configs,
}

pub(crate) fn save_checkpoint<B: AutodiffBackend, O: Optimizer<Realm<B>, B>>(
    dir: &Path,
    model: &Realm<B>,
    optims: [&O; 2],
    state: &CkptState,
    snap: &Snapshot,
) -> Result<()> {
    let staging = ragl_core::atomic::temp_path(dir);
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| ragl_core::Error::io(&staging, e))?;
    let rec = Recorder::new();
    model
        .clone()
        .save_file(staging.join("model"), &rec)
        .map_err(|e| Error::save(&staging, e))?;
    for (o, name) in optims.into_iter().zip(OPTIM_FILES) {
        rec.record(o.to_record(), staging.join(name))
            .map_err(|e| Error::save(&staging, e))?;
    }
    let bytes: Vec<u8> = snap.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(staging.join("index.f32"), bytes)
        .map_err(|e| ragl_core::Error::io(&staging, e))?;
    let mut m = ragl_core::manifest::Manifest::new(CKPT_KIND, CKPT_VERSION);
    m.config = serde_json::to_value(state).expect("state serialises");
    for f in ["model.mpk", "optim.mpk", "optim_reader.mpk", "index.f32"] {
        m.add_file(&staging, f)?;
    }
    m.write(&staging)?;
    ragl_core::atomic::publish_dir(&staging, dir)?;
    Ok(())
}

/// The towers' AdamW state and the reader's (two learning rates).
const OPTIM_FILES: [&str; 2] = ["optim", "optim_reader"];

pub(crate) type Loaded<B, O> = (Realm<B>, [O; 2], CkptState, Snapshot);

pub(crate) fn load_checkpoint<B: AutodiffBackend, O: Optimizer<Realm<B>, B>>(
    dir: &Path,
    optims: [O; 2],
    device: &B::Device,
) -> Result<Loaded<B, O>> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, CKPT_KIND, CKPT_VERSION, None)?;
    m.verify_files(dir)?;
    let state: CkptState =
        serde_json::from_value(m.config.clone()).map_err(|e| Error::load(dir, e))?;
    let skeleton = skeleton::<B>(&state.configs, device);
    let rec = Recorder::new();
    let model = skeleton
        .load_file(dir.join("model"), &rec, device)
        .map_err(|e| Error::load(dir, e))?;
    let mut loaded = Vec::with_capacity(2);
    for (o, name) in optims.into_iter().zip(OPTIM_FILES) {
        let orec = rec
            .load(dir.join(name), device)
            .map_err(|e| Error::load(dir, e))?;
        loaded.push(o.load_record(orec));
    }
    let optims: [O; 2] = loaded.try_into().map_err(|_| ()).expect("two optimisers");
    let bytes = std::fs::read(dir.join("index.f32")).map_err(|e| ragl_core::Error::io(dir, e))?;
    let vectors = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let snap = Snapshot {
        step: state.snapshot_step,
        dim: state.dim,
        vectors,
    };
    Ok((model, optims, state, snap))
}

fn skeleton<B: Backend>(c: &Configs, device: &B::Device) -> Realm<B> {
    let (query, _) = c.query.init::<B>(false, device);
    let (doc, _) = c.doc.init::<B>(false, device);
    let (bert, head) = c.reader.init::<B>(false, device);
    Realm {
        query,
        doc,
        reader: MlmReader { bert, head },
    }
}
