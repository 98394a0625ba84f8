//! The quickstart's run configs as typed values, every field set, so that a change to a
//! config's schema breaks this build instead of the run.

use ragl_mt::train::RunConfig;
use ragl_realm::openqa::FinetuneConfig;
use ragl_realm::pretrain::PretrainConfig;

use super::Size;

/// The quickstart's REALM pretraining: every field set here, so that a change to the
/// config's schema breaks this build instead of the run.
pub(super) fn realm_config(
    size: &Size,
    seed: u64,
    examples: &str,
    passages: &str,
    tower: &str,
    reader: &str,
) -> PretrainConfig {
    use ragl_realm::pretrain::{
        Marginal, PretrainData, PretrainModel, PretrainTrain, RefreshConfig, RefreshMode, Retrieval,
    };
    PretrainConfig {
        data: PretrainData {
            examples: examples.into(),
            passages: passages.into(),
            heldout: size.heldout,
            span_elsewhere: false,
        },
        model: PretrainModel {
            query: tower.into(),
            doc: None,
            reader: reader.into(),
            fresh_mlm_head: false,
            pooling: ragl_model::encode::Pooling::Mean,
            normalize: true,
            score_scale: 20.0,
            doc_max_len: 64,
            reader_max_len: 96,
            k: 3,
            null_doc: true,
            exclude_own: true,
            retrieval: Retrieval::Dense,
            marginal: Marginal::Span,
        },
        refresh: RefreshConfig {
            every: 25,
            mode: RefreshMode::Sync,
            batch_size: 64,
            threads: 0,
            swap_after: 0,
        },
        train: PretrainTrain {
            lr: 3e-4,
            reader_lr: Some(2e-3),
            warmup: 20,
            batch: 8,
            max_steps: size.realm_steps,
            seed,
            eval_every: size.realm_eval,
            save_every: 0,
            ..PretrainTrain::default()
        },
        ict: ragl_realm::ict::IctConfig {
            steps: size.ict_steps,
            batch: 32,
            lr: 1e-3,
            warmup: 15,
            ..Default::default()
        },
    }
}

/// The ORQA start REALM is compared with: the same ICT warm start of the towers, and the
/// reader trained on the same masked sentences for the same steps without retrieval (∅
/// only, BERT's own MLM), so that the towers never see the masked-LM signal.
pub(super) fn orqa_config(
    size: &Size,
    seed: u64,
    examples: &str,
    passages: &str,
    tower: &str,
    reader: &str,
) -> PretrainConfig {
    let mut c = realm_config(size, seed, examples, passages, tower, reader);
    c.model.retrieval = ragl_realm::pretrain::Retrieval::None;
    c
}

/// The quickstart's open-QA fine-tuning with `k` documents (0: closed-book).
pub(super) fn qa_config(
    size: &Size,
    seed: u64,
    k: usize,
    qa: &str,
    passages: &str,
    index: &str,
    reader: &str,
) -> FinetuneConfig {
    use ragl_realm::openqa::{DataConfig, ModelConfig, TrainConfig};
    FinetuneConfig {
        data: DataConfig {
            train: format!("{qa}/train.jsonl").into(),
            dev: format!("{qa}/dev.jsonl").into(),
            passages: passages.into(),
            index: index.into(),
        },
        model: ModelConfig {
            reader: reader.into(),
            k,
            query: None,
            init: None,
            train_query: true,
            span: ragl_reader::span::SpanReaderConfig {
                max_span: 5,
                span_hidden: 128,
                max_len: 96,
                ..Default::default()
            },
        },
        train: TrainConfig {
            lr: 1e-3,
            warmup: 10,
            batch_questions: 8,
            epochs: 100,
            max_steps: Some(size.qa_steps),
            seed,
            dev_every: (size.qa_steps / 4).max(1),
            dev_limit: 120,
            patience: 0,
            ..TrainConfig::default()
        },
    }
}

/// The quickstart's translation model, trained on the general domain of `mt`.
pub(super) fn mt_config(size: &Size, seed: u64, mt: &str) -> RunConfig {
    use ragl_mt::data::FilePair;
    let pair = |split: &str| FilePair {
        src: format!("{mt}/general.{split}.src").into(),
        tgt: format!("{mt}/general.{split}.tgt").into(),
    };
    RunConfig {
        data: ragl_mt::train::DataConfig {
            train: vec![pair("train")],
            dev: Some(pair("dev")),
            vocab_size: 1000,
            min_frequency: 2,
            max_len: 64,
        },
        model: ragl_mt::model::ModelConfig {
            vocab_size: 0,
            d_model: 128,
            heads: 4,
            ff: 512,
            encoder_layers: 2,
            decoder_layers: 2,
            dropout: 0.0,
            norm_first: true,
            ..ragl_mt::model::ModelConfig::default()
        },
        train: ragl_mt::train::TrainConfig {
            max_tokens: 2048,
            lr: 2e-3,
            warmup: 100,
            label_smoothing: 0.1,
            weight_decay: 1e-4,
            seed,
            max_minutes: Some(size.mt_minutes),
            max_steps: Some(size.mt_steps),
            save_every: 200,
            keep_last: 1,
            dev_every: 100,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::pipeline::Pipeline;
    use super::super::{FULL, SMOKE};
    use super::*;

    /// Each typed config, written as the quickstart writes it, reads back through the same
    /// `from_toml` the commands use, to the same value.
    #[test]
    fn written_configs_read_back_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let q = Pipeline {
            out: d.path().to_path_buf(),
            times: Vec::new(),
        };
        for size in [&FULL, &SMOKE] {
            for realm in [
                realm_config(size, 7, "ex.jsonl", "p.jsonl", "m/tower", "m/reader"),
                orqa_config(size, 7, "ex.jsonl", "p.jsonl", "m/tower", "m/reader"),
            ] {
                let p = q.write_config("realm.toml", "a note", &realm).unwrap();
                assert_eq!(PretrainConfig::from_toml(Path::new(&p)).unwrap(), realm);
            }
            for k in [0, 3] {
                let qa = qa_config(size, 7, k, "qa", "p.jsonl", "idx", "r");
                let p = q.write_config("qa.toml", "a note", &qa).unwrap();
                let back = FinetuneConfig::from_toml(Path::new(&p)).unwrap();
                assert_eq!(
                    serde_json::to_value(back).unwrap(),
                    serde_json::to_value(qa).unwrap()
                );
            }
            let mt = mt_config(size, 7, "mt");
            let p = q.write_config("mt.toml", "a note", &mt).unwrap();
            assert_eq!(RunConfig::from_toml(Path::new(&p)).unwrap(), mt);
        }
    }
}
