//! Fixtures the realm tests share: tiny BERTs saved in Hugging Face layout, and exact
//! indexes over fixed vectors. (Each test file uses some of them.)
#![allow(dead_code)]

use std::path::Path;

use burn::backend::Flex;
use ragl_model::bert::BertConfig;

/// A tiny BERT (one layer; `hidden` wide, feed-forward twice that, 64 positions) with a
/// whole-word vocabulary of `words`, seeded, saved to `dir`; with its MLM head if `mlm`.
pub fn bert_dir<'a>(
    dir: &Path,
    words: impl IntoIterator<Item = &'a str>,
    hidden: usize,
    seed: u64,
    mlm: bool,
) {
    let n = ragl_testkit::write_vocab(dir, words);
    let mut c = BertConfig::tiny(n);
    c.hidden_size = hidden;
    c.intermediate_size = 2 * hidden;
    c.max_position_embeddings = 64;
    let device = Default::default();
    <Flex as burn::tensor::backend::Backend>::seed(&device, seed);
    let (bert, head) = c.init::<Flex>(false, &device);
    ragl_model::checkpoint::save(dir, &c, &bert, mlm.then_some(&head)).unwrap();
}

/// An exact inner-product index at `dir` over `vectors` (id, vector), recording `encoder`
/// as the encoder that made them.
pub fn exact_index(
    dir: &Path,
    dim: usize,
    encoder: serde_json::Value,
    chunk_rows: usize,
    vectors: Vec<(String, Vec<f32>)>,
) {
    let spec = ragl_index::build::BuildSpec {
        meta: ragl_index::artifact::IndexMeta {
            index: ragl_index::artifact::IndexConfig::Exact {
                metric: ragl_index::Metric::Ip,
            },
            dim,
            encoder,
            query_fingerprint: None,
            source_sha256: "test".into(),
            shard: None,
        },
        model_fingerprint: None,
        chunk_rows,
    };
    let n = vectors.len();
    ragl_index::build::build_dense(
        dir,
        &spec,
        vectors.into_iter().map(Ok),
        n,
        |rows: &[Vec<f32>], _| Ok(rows.concat()),
        1,
        |_, _| {},
    )
    .unwrap();
}
