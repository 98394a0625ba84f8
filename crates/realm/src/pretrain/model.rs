//! The three trained parts (query tower, doc tower, knowledge-augmented reader): started
//! from HF checkpoints, and exported back to HF layout when a run ends.

use std::path::Path;

use burn::prelude::*;
use ragl_model::bert::{Bert, BertConfig};
use ragl_reader::mlm::MlmReader;
use serde::{Deserialize, Serialize};

use super::config::PretrainConfig;
use crate::{Error, Result};

/// The three trained parts.
#[derive(Module, Debug)]
pub struct Realm<B: Backend> {
    pub query: Bert<B>,
    pub doc: Bert<B>,
    pub reader: MlmReader<B>,
}

/// A tensor's values on the host, as f32.
pub(crate) fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32")
}

/// Starting weights: towers and reader from HF checkpoints.
pub fn init<B: Backend>(cfg: &PretrainConfig, device: &B::Device) -> Result<(Realm<B>, Configs)> {
    let q = ragl_model::checkpoint::load::<B>(&cfg.model.query, device)?;
    let d = ragl_model::checkpoint::load::<B>(cfg.doc_dir(), device)?;
    let r = ragl_model::checkpoint::load::<B>(&cfg.model.reader, device)?;
    let head = match r.mlm {
        // Drawn from the run's seed, like every other fresh parameter.
        _ if cfg.model.fresh_mlm_head => r.config.init::<B>(false, device).1,
        Some(head) => head,
        None => {
            return Err(Error::Mismatch(format!(
                "{}: the reader needs an MLM head (a BertForMaskedLM checkpoint), or model.fresh_mlm_head = true to start one",
                cfg.model.reader.display()
            )));
        }
    };
    if q.config.hidden_size != d.config.hidden_size {
        return Err(Error::Mismatch(
            "the query and doc towers must have the same hidden size".into(),
        ));
    }
    let configs = Configs {
        query: q.config,
        doc: d.config,
        reader: r.config,
    };
    Ok((
        Realm {
            query: q.bert,
            doc: d.bert,
            reader: MlmReader { bert: r.bert, head },
        },
        configs,
    ))
}

/// The BERT configurations of the three parts (to rebuild skeletons when loading).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configs {
    pub query: BertConfig,
    pub doc: BertConfig,
    pub reader: BertConfig,
}

/// Writes the three parts in HF layout under `dir/{query,doc,reader}`, each with its source
/// tokenizer and pooling files, so `ragl index build --model dir/doc` and `ragl finetune-qa`
/// start from them.
pub fn export<B: Backend>(
    model: &Realm<B>,
    configs: &Configs,
    cfg: &PretrainConfig,
    dir: &Path,
) -> Result<()> {
    let parts: [(&str, &Bert<B>, &BertConfig, &Path, bool); 3] = [
        (
            "query",
            &model.query,
            &configs.query,
            &cfg.model.query,
            false,
        ),
        ("doc", &model.doc, &configs.doc, cfg.doc_dir(), false),
        (
            "reader",
            &model.reader.bert,
            &configs.reader,
            &cfg.model.reader,
            true,
        ),
    ];
    for (name, bert, config, src, mlm) in parts {
        let out = dir.join(name);
        let head = mlm.then_some(&model.reader.head);
        ragl_model::checkpoint::save(&out, config, bert, head)?;
        for f in [
            "tokenizer.json",
            "vocab.txt",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "modules.json",
            "1_Pooling/config.json",
        ] {
            let from = src.join(f);
            if from.is_file() {
                let to = out.join(f);
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p).map_err(|e| ragl_core::Error::io(p, e))?;
                }
                std::fs::copy(&from, &to).map_err(|e| ragl_core::Error::io(&to, e))?;
            }
        }
    }
    Ok(())
}
