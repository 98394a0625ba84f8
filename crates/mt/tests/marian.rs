//! Marian checkpoints the test writes itself (transformers' file layout, 5.x and 4.x
//! naming, random weights): every tensor lands where the name table says, both layouts load
//! to the same model, incremental decoding equals teacher forcing in Marian's configuration,
//! tokenisation goes through vocab.json, and broken directories are refused with one clear
//! error each. Numeric agreement with transformers itself is scripts/reference/seq2seq_parity.py
//! (it needs torch; the numbers are in docs/RESULTS.md).

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use ragl_testkit::hf::{Rng, Tensors, bart_layers, read_tensor, write_safetensors};

type B = Flex;

const D: usize = 16;
const FF: usize = 32;
const LAYERS: usize = 2;

fn vocab_tokens() -> Vec<String> {
    let mut v = vec!["</s>".to_string(), "<unk>".to_string()];
    for p in [
        "▁ein", "▁Hund", "▁a", "▁dog", "▁runs", "▁the", "▁", ".", "e", "i", "n",
    ] {
        v.push(p.to_string());
    }
    v.push("<pad>".into());
    v
}

/// Writes a Marian directory; `v4` stores the tied and static tensors transformers 4.x
/// wrote (`embed_tokens`, `lm_head`, `embed_positions`), else only `shared` (5.x).
fn write_marian(dir: &Path, v4: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let tokens = vocab_tokens();
    let v = tokens.len();
    let pad = v - 1;
    let config = serde_json::json!({
        "model_type": "marian", "architectures": ["MarianMTModel"],
        "d_model": D, "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "encoder_attention_heads": 4, "decoder_attention_heads": 4,
        "encoder_ffn_dim": FF, "decoder_ffn_dim": FF, "activation_function": "swish",
        "vocab_size": v, "decoder_vocab_size": v, "pad_token_id": pad, "eos_token_id": 0,
        "decoder_start_token_id": pad, "scale_embedding": true,
        "max_position_embeddings": 64, "share_encoder_decoder_embeddings": true,
        "num_beams": 3, "max_length": 12, "bad_words_ids": [[pad]],
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let vocab: BTreeMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    std::fs::write(
        dir.join("vocab.json"),
        serde_json::to_string(&vocab).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("source.spm"), ragl_testkit::spm::tiny_unigram()).unwrap();
    std::fs::write(dir.join("target.spm"), ragl_testkit::spm::tiny_unigram()).unwrap();

    let mut rng = Rng(7);
    let mut t = Tensors::new();
    let shared = rng.vec(v * D);
    t.insert("model.shared.weight".into(), (vec![v, D], shared.clone()));
    t.insert("final_logits_bias".into(), (vec![1, v], rng.vec(v)));
    bart_layers(&mut t, &mut rng, D, FF, LAYERS);
    if v4 {
        for n in [
            "model.encoder.embed_tokens.weight",
            "model.decoder.embed_tokens.weight",
            "lm_head.weight",
        ] {
            t.insert(n.into(), (vec![v, D], shared.clone()));
        }
        let table: Vec<f32> = ragl_mt::model::sinusoids::<B>(
            0,
            64,
            D,
            ragl_mt::model::Positions::Marian,
            &Default::default(),
        )
        .into_data()
        .to_vec()
        .unwrap();
        for side in ["encoder", "decoder"] {
            t.insert(
                format!("model.{side}.embed_positions.weight"),
                (vec![64, D], table.clone()),
            );
        }
    }
    write_safetensors(&dir.join("model.safetensors"), &t);
}

fn load(dir: &Path) -> ragl_mt::Result<ragl_mt::checkpoint::MtModel<B>> {
    ragl_mt::checkpoint::load::<B>(dir, &Default::default())
}

fn host<const N: usize>(t: Tensor<B, N>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn tensors_land_where_the_name_table_says() {
    let dir = tempfile::tempdir().unwrap();
    write_marian(dir.path(), false);
    let m = load(dir.path()).unwrap();
    let file = |n: &str| read_tensor(&dir.path().join("model.safetensors"), n);
    // burn's Linear holds [in, out]; HF's [out, in].
    let w = host(m.model.decoder[1].cross_attn.key.weight.val());
    let f = file("model.decoder.layers.1.encoder_attn.k_proj.weight");
    for o in 0..D {
        for i in 0..D {
            assert_eq!(w[i * D + o], f[o * D + i]);
        }
    }
    assert_eq!(
        host(m.model.encoder[0].ff_norm.gamma.val()),
        file("model.encoder.layers.0.final_layer_norm.weight")
    );
    assert_eq!(
        host(m.model.decoder[0].self_norm.beta.clone().unwrap().val()),
        file("model.decoder.layers.0.self_attn_layer_norm.bias")
    );
    assert_eq!(
        host(m.model.logits_bias.clone().unwrap().val()),
        file("final_logits_bias")
    );
    assert_eq!(
        host(m.model.embed.weight.val()),
        file("model.shared.weight")
    );
    // The generation config's beam defaults.
    assert_eq!(m.generation.beam, 3);
    assert_eq!(m.generation.max_len_b, 11);
    assert!(!m.generation.early_stopping);
    // No forced_eos_token_id in this config: transformers stops where the hypotheses are.
    assert_eq!(m.generation.at_max_len, ragl_mt::beam::AtMaxLen::Truncate);
    let sp = m.vocab.specials();
    assert_eq!((sp.pad, sp.bos, sp.eos, sp.unk), (13, 13, 0, 1));
}

#[test]
fn transformers_4_and_5_layouts_load_to_the_same_model() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_marian(a.path(), false);
    write_marian(b.path(), true);
    let (ma, mb) = (load(a.path()).unwrap(), load(b.path()).unwrap());
    let run = |m: &ragl_mt::checkpoint::MtModel<B>| {
        let out = ragl_mt::score::score(
            m,
            &[("ein Hund".into(), "a dog runs.".into())],
            4,
            None,
            |_| {},
        )
        .unwrap();
        out[0].log_probs.clone()
    };
    assert_eq!(run(&ma), run(&mb));
    // Different files, different fingerprints; the same files, the same.
    assert_ne!(ma.fingerprint, mb.fingerprint);
    assert_eq!(ma.fingerprint, load(a.path()).unwrap().fingerprint);
}

#[test]
fn pytorch_model_bin_loads_as_its_safetensors_twin() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_marian(a.path(), false);
    write_marian(b.path(), false);
    // The same tensors as torch.save writes them.
    let st = b.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut t = Tensors::new();
    for (name, view) in file.tensors() {
        t.insert(
            name.clone(),
            (view.shape().to_vec(), read_tensor(&st, &name)),
        );
    }
    std::fs::remove_file(&st).unwrap();
    ragl_testkit::hf::write_torch_bin(
        &b.path().join("pytorch_model.bin"),
        &t,
        "collections\nOrderedDict",
    );
    let (ma, mb) = (load(a.path()).unwrap(), load(b.path()).unwrap());
    let pair = [("ein Hund".to_string(), "a dog runs.".to_string())];
    let run = |m: &ragl_mt::checkpoint::MtModel<B>| {
        ragl_mt::score::score(m, &pair, 4, None, |_| {}).unwrap()[0]
            .log_probs
            .clone()
    };
    assert_eq!(run(&ma), run(&mb));
}

#[test]
fn incremental_decoding_equals_teacher_forcing_in_marian_configuration() {
    let dir = tempfile::tempdir().unwrap();
    write_marian(dir.path(), false);
    let m = load(dir.path()).unwrap();
    let src = m.vocab.encode_source("ein Hund").unwrap();
    let tgt = m.vocab.encode_target("a dog runs.").unwrap();
    let scored = ragl_mt::score::score(
        &m,
        &[("ein Hund".into(), "a dog runs.".into())],
        1,
        None,
        |_| {},
    )
    .unwrap();
    let dev = Default::default();
    let s = Tensor::<B, 2, Int>::from_data(
        TensorData::new(src.iter().map(|&x| x as i64).collect(), [1, src.len()]),
        &dev,
    );
    let (mem, pad) = m.model.encode(s);
    let mut st = m.model.start(mem, pad);
    let mut prev = m.model.specials.bos as i64;
    for (j, &want_tok) in tgt.iter().chain([&0]).enumerate() {
        let step = m.model.step(
            Tensor::from_data(TensorData::new(vec![prev], [1]), &dev),
            &mut st,
        );
        let lp: Vec<f32> = host(step.log_probs);
        let got = lp[want_tok as usize];
        assert!(
            (got - scored[0].log_probs[j]).abs() < 1e-4,
            "position {j}: {got} vs {}",
            scored[0].log_probs[j]
        );
        prev = want_tok as i64;
    }
}

#[test]
fn tokenizes_through_vocab_json() {
    let dir = tempfile::tempdir().unwrap();
    write_marian(dir.path(), false);
    let m = load(dir.path()).unwrap();
    // ▁ein ▁Hund </s>
    assert_eq!(m.vocab.encode_source("ein Hund").unwrap(), vec![2, 3, 0]);
    // "läuft" segments into pieces vocab.json lacks: each is <unk> (id 1).
    let ids = m.vocab.encode_target("läuft").unwrap();
    assert!(ids.contains(&1), "{ids:?}");
    assert_eq!(m.vocab.decode(&[4, 5, 6, 9, 0, 13]).unwrap(), "a dog runs.");
}

#[test]
fn broken_directories_are_refused_with_one_clear_error() {
    let check = |mutate: &dyn Fn(&Path), want: &str| {
        let dir = tempfile::tempdir().unwrap();
        write_marian(dir.path(), false);
        mutate(dir.path());
        let e = match load(dir.path()) {
            Ok(_) => panic!("loaded a broken directory ({want})"),
            Err(e) => e,
        };
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains(want), "{want:?} not in: {e}");
    };
    check(
        &|d| std::fs::remove_file(d.join("source.spm")).unwrap(),
        "without source.spm",
    );
    check(
        &|d| std::fs::write(d.join("vocab.json"), r#"{"</s>": 0, "<unk>": 1}"#).unwrap(),
        "vocabulary and model do not match",
    );
    check(
        &|d| {
            let c = std::fs::read_to_string(d.join("config.json")).unwrap();
            std::fs::write(d.join("config.json"), c.replace("\"marian\"", "\"bert\"")).unwrap()
        },
        "model_type \"bert\"",
    );
    check(
        &|d| std::fs::write(d.join("target.spm"), b"not a protobuf at all").unwrap(),
        "target.spm",
    );
    check(
        &|d| {
            std::fs::remove_file(d.join("model.safetensors")).unwrap();
            std::fs::write(d.join("pytorch_model.bin"), b"PK\x03\x04 truncated").unwrap();
        },
        "pytorch_model.bin: zip",
    );
    check(
        &|d| std::fs::remove_file(d.join("model.safetensors")).unwrap(),
        "no model.safetensors or pytorch_model.bin",
    );
    // An empty directory is not a model of any kind.
    let empty = tempfile::tempdir().unwrap();
    let e = load(empty.path()).err().expect("refused");
    assert!(
        e.to_string().contains("not a translation model directory"),
        "{e}"
    );
}

/// A BERT checkpoint from ../shared passed as a translation model.
#[test]
fn a_bert_directory_is_not_a_translation_model() {
    let Some(shared) = ragl_testkit::shared("models/all-minilm-l6-v2") else {
        return;
    };
    let e = load(&shared.join("models/all-minilm-l6-v2"))
        .err()
        .expect("refused");
    assert!(e.is_bad_input());
    assert!(e.to_string().contains("model_type \"bert\""), "{e}");
}
