//! REALM checkpoints written by hand, as `google/realm-*` hold them (transformers' names in
//! a torch.save file, `block_emb` inside, `block_records.npy` beside it; random weights),
//! over a tiny vocabulary and six one-line blocks.

use std::path::Path;

use crate::hf::{Rng, Tensors, write_bytes_npy, write_torch_bin};

/// Which REALM checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `RealmForOpenQA` (realm-orqa-*-openqa): embedder, reader, `block_emb`,
    /// `block_records.npy`.
    OpenQa,
    /// `RealmEmbedder` (realm-cc-news-pretrained-embedder).
    Embedder,
    /// `RealmKnowledgeAugEncoder` (realm-cc-news-pretrained-encoder): BERT + MLM head.
    Encoder,
}

pub const WORDS: &str = "the a of in was who what when where is river city king born paris \
                         rome nile flows through egypt france capital founded year 1900 1066 \
                         william";
pub const BLOCKS: [&str; 6] = [
    "paris is the capital of france",
    "the nile flows through egypt",
    "rome was founded in the year 1066",
    "william was king in 1066",
    "the river flows through the city",
    "who was born in paris in 1900",
];
/// `retriever_proj_size`, `span_hidden_size`, hidden size.
pub const PROJ: usize = 8;
pub const SPAN: usize = 8;
pub const HIDDEN: usize = 16;
const FF: usize = 32;
const LAYERS: usize = 2;

fn lin(t: &mut Tensors, rng: &mut Rng, name: &str, i: usize, o: usize) {
    t.insert(format!("{name}.weight"), (vec![o, i], rng.vec(o * i)));
    t.insert(format!("{name}.bias"), (vec![o], rng.vec(o)));
}

fn norm(t: &mut Tensors, rng: &mut Rng, name: &str, n: usize) {
    let g: Vec<f32> = rng.vec(n).iter().map(|x| 1.0 + x).collect();
    t.insert(format!("{name}.weight"), (vec![n], g));
    t.insert(format!("{name}.bias"), (vec![n], rng.vec(n)));
}

/// `RealmBertModel`'s tensors under `prefix` (`…realm.`): embeddings, layers, pooler.
fn bert(t: &mut Tensors, rng: &mut Rng, prefix: &str, vocab: usize) {
    let d = HIDDEN;
    let emb = |t: &mut Tensors, rng: &mut Rng, name: &str, rows: usize| {
        t.insert(
            format!("{prefix}embeddings.{name}.weight"),
            (vec![rows, d], rng.vec(rows * d)),
        );
    };
    emb(t, rng, "word_embeddings", vocab);
    emb(t, rng, "position_embeddings", 512);
    emb(t, rng, "token_type_embeddings", 2);
    norm(t, rng, &format!("{prefix}embeddings.LayerNorm"), d);
    for l in 0..LAYERS {
        let p = format!("{prefix}encoder.layer.{l}");
        for q in ["query", "key", "value"] {
            lin(t, rng, &format!("{p}.attention.self.{q}"), d, d);
        }
        lin(t, rng, &format!("{p}.attention.output.dense"), d, d);
        norm(t, rng, &format!("{p}.attention.output.LayerNorm"), d);
        lin(t, rng, &format!("{p}.intermediate.dense"), d, FF);
        lin(t, rng, &format!("{p}.output.dense"), FF, d);
        norm(t, rng, &format!("{p}.output.LayerNorm"), d);
    }
    lin(t, rng, &format!("{prefix}pooler.dense"), d, d);
}

/// Writes a REALM checkpoint of `layout` into `dir` (`config.json`, `vocab.txt`,
/// `pytorch_model.bin`, and for open QA `block_records.npy`). Weights differ by `seed`.
pub fn write_realm(dir: &Path, layout: Layout, seed: u64) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let v = crate::write_vocab(dir, [WORDS]);
    let config = format!(
        r#"{{"model_type": "realm", "architectures": ["{}"], "vocab_size": {v},
  "hidden_size": {HIDDEN}, "num_hidden_layers": {LAYERS}, "num_attention_heads": 2,
  "intermediate_size": {FF}, "hidden_act": "gelu_new", "max_position_embeddings": 512,
  "type_vocab_size": 2, "layer_norm_eps": 1e-12, "retriever_proj_size": {PROJ},
  "span_hidden_size": {SPAN}, "max_span_width": 3, "reader_layer_norm_eps": 1e-3,
  "reader_seq_len": 32, "reader_beam_size": 3, "num_block_records": {}}}"#,
        match layout {
            Layout::OpenQa => "RealmForOpenQA",
            Layout::Embedder => "RealmEmbedder",
            Layout::Encoder => "RealmKnowledgeAugEncoder",
        },
        BLOCKS.len()
    );
    std::fs::write(dir.join("config.json"), config).expect("write config");
    let mut rng = Rng(seed);
    let mut t = Tensors::new();
    let d = HIDDEN;
    match layout {
        Layout::Encoder => {
            bert(&mut t, &mut rng, "realm.", v);
            lin(&mut t, &mut rng, "cls.predictions.transform.dense", d, d);
            norm(&mut t, &mut rng, "cls.predictions.transform.LayerNorm", d);
            t.insert("cls.predictions.bias".into(), (vec![v], rng.vec(v)));
            // Tied to the word embeddings, as every BERT MLM is.
            let words = t["realm.embeddings.word_embeddings.weight"].clone();
            t.insert("cls.predictions.decoder.weight".into(), words);
        }
        Layout::Embedder | Layout::OpenQa => {
            let emb = if layout == Layout::OpenQa {
                "embedder."
            } else {
                ""
            };
            bert(&mut t, &mut rng, &format!("{emb}realm."), v);
            lin(&mut t, &mut rng, &format!("{emb}cls.dense"), d, PROJ);
            norm(&mut t, &mut rng, &format!("{emb}cls.LayerNorm"), PROJ);
            // The MLM head REALM's projection carries, unused and untied.
            t.insert(
                format!("{emb}cls.predictions.decoder.weight"),
                (vec![v, d], vec![0.5; v * d]),
            );
        }
    }
    if layout == Layout::OpenQa {
        bert(&mut t, &mut rng, "reader.realm.", v);
        lin(
            &mut t,
            &mut rng,
            "reader.qa_outputs.dense_intermediate",
            d,
            2 * SPAN,
        );
        lin(&mut t, &mut rng, "reader.qa_outputs.dense_output", SPAN, 1);
        norm(
            &mut t,
            &mut rng,
            "reader.qa_outputs.layer_normalization",
            SPAN,
        );
        let rows = BLOCKS.len();
        t.insert("block_emb".into(), (vec![rows, PROJ], rng.vec(rows * PROJ)));
        let recs: Vec<&[u8]> = BLOCKS.iter().map(|b| b.as_bytes()).collect();
        write_bytes_npy(&dir.join("block_records.npy"), &recs);
    }
    write_torch_bin(
        &dir.join("pytorch_model.bin"),
        &t,
        "collections\nOrderedDict",
    );
}
