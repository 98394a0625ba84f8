//! FSMT checkpoints the test writes itself (transformers' file layout, random weights):
//! every tensor lands where the name table says, equal copies of an embedding are shared,
//! incremental decoding equals teacher forcing with fairseq's position offset, text goes
//! through Moses, BPE and the two maps, and broken directories are refused with one clear
//! error each. Numeric agreement with transformers itself is
//! scripts/reference/seq2seq_parity.py (it needs torch; the numbers are in docs/RESULTS.md).

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use ragl_testkit::hf::{Rng, Tensors, bart_layers, read_tensor, write_safetensors};

type B = Flex;

const D: usize = 16;
const FF: usize = 32;
const LAYERS: usize = 2;
const PAD: usize = 1;
const POSITIONS: usize = 64;

const SPECIALS: [&str; 4] = ["<s>", "<pad>", "</s>", "<unk>"];
const MERGES: &str = "e i\nei n</w>\nH u\nHu n\nHun d</w>\nd o\ndo g</w>\nr u\nru n\nrun s</w>\n";
const SOURCE: [&str; 6] = ["ein</w>", "Hund</w>", ".</w>", "e", "H", "d"];
const TARGET: [&str; 5] = ["a</w>", "dog</w>", "runs</w>", ".</w>", "the</w>"];

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Separate source and target maps (wmt19-ru-en).
    Separate,
    /// One merged map (wmt19-de-en); the file stores equal copies of the embedding.
    MergedCopies,
    /// One merged map; the file stores the target embedding only.
    MergedTied,
}

fn map(tokens: &[&str]) -> BTreeMap<String, usize> {
    SPECIALS
        .iter()
        .chain(tokens)
        .enumerate()
        .map(|(i, t)| (t.to_string(), i))
        .collect()
}

fn write_fsmt(dir: &Path, layout: Layout) {
    std::fs::create_dir_all(dir).unwrap();
    let mut merged: Vec<&str> = SOURCE.to_vec();
    merged.extend(TARGET.iter().filter(|t| !SOURCE.contains(t)));
    let (src, tgt) = match layout {
        Layout::Separate => (map(&SOURCE), map(&TARGET)),
        _ => (map(&merged), map(&merged)),
    };
    let (sv, tv) = (src.len(), tgt.len());
    let config = serde_json::json!({
        "model_type": "fsmt", "architectures": ["FSMTForConditionalGeneration"],
        "langs": ["de", "en"], "src_vocab_size": sv, "tgt_vocab_size": tv,
        "d_model": D, "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "encoder_attention_heads": 4, "decoder_attention_heads": 4,
        "encoder_ffn_dim": FF, "decoder_ffn_dim": FF, "activation_function": "relu",
        "pad_token_id": PAD, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
        "scale_embedding": true, "max_position_embeddings": POSITIONS,
        "early_stopping": true, "length_penalty": 1.1, "tie_word_embeddings": false,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    for (name, m) in [("vocab-src.json", &src), ("vocab-tgt.json", &tgt)] {
        std::fs::write(dir.join(name), serde_json::to_string(m).unwrap()).unwrap();
    }
    std::fs::write(dir.join("merges.txt"), MERGES).unwrap();

    let mut rng = Rng(11);
    let mut t = Tensors::new();
    let target = rng.vec(tv * D);
    t.insert(
        "model.decoder.embed_tokens.weight".into(),
        (vec![tv, D], target.clone()),
    );
    match layout {
        Layout::Separate => {
            t.insert(
                "model.encoder.embed_tokens.weight".into(),
                (vec![sv, D], rng.vec(sv * D)),
            );
            t.insert(
                "model.decoder.output_projection.weight".into(),
                (vec![tv, D], rng.vec(tv * D)),
            );
        }
        Layout::MergedCopies => {
            for n in [
                "model.encoder.embed_tokens.weight",
                "model.decoder.output_projection.weight",
            ] {
                t.insert(n.into(), (vec![tv, D], target.clone()));
            }
        }
        Layout::MergedTied => {}
    }
    // fairseq's table: rows are positions, the padding row is zero.
    let rows = POSITIONS + PAD + 1;
    let mut table: Vec<f32> = ragl_mt::model::sinusoids::<B>(
        0,
        rows,
        D,
        ragl_mt::model::Positions::Fairseq,
        &Default::default(),
    )
    .into_data()
    .to_vec()
    .unwrap();
    table[PAD * D..(PAD + 1) * D].fill(0.0);
    for side in ["encoder", "decoder"] {
        t.insert(
            format!("model.{side}.embed_positions.weight"),
            (vec![rows, D], table.clone()),
        );
    }
    bart_layers(&mut t, &mut rng, D, FF, LAYERS);
    write_safetensors(&dir.join("model.safetensors"), &t);
}

fn load(dir: &Path) -> ragl_mt::Result<ragl_mt::checkpoint::MtModel<B>> {
    ragl_mt::checkpoint::load::<B>(dir, &Default::default())
}

fn host<const N: usize>(t: Tensor<B, N>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn score(m: &ragl_mt::checkpoint::MtModel<B>) -> Vec<f32> {
    let pair = [("Ein Hund.".to_string(), "a dog runs.".to_string())];
    ragl_mt::score::score(m, &pair, 4, None, |_| {}).unwrap()[0]
        .log_probs
        .clone()
}

#[test]
fn tensors_land_where_the_name_table_says() {
    let dir = tempfile::tempdir().unwrap();
    write_fsmt(dir.path(), Layout::Separate);
    let m = load(dir.path()).unwrap();
    let file = |n: &str| read_tensor(&dir.path().join("model.safetensors"), n);
    assert_eq!(
        host(m.model.src_embed.clone().unwrap().weight.val()),
        file("model.encoder.embed_tokens.weight")
    );
    assert_eq!(
        host(m.model.embed.weight.val()),
        file("model.decoder.embed_tokens.weight")
    );
    assert_eq!(
        host(m.model.out_proj.clone().unwrap().val()),
        file("model.decoder.output_projection.weight")
    );
    // burn's Linear holds [in, out]; HF's [out, in].
    let w = host(m.model.encoder[1].ff.fc1.weight.val());
    let f = file("model.encoder.layers.1.fc1.weight");
    for o in 0..FF {
        for i in 0..D {
            assert_eq!(w[i * FF + o], f[o * D + i]);
        }
    }
    assert!(m.model.logits_bias.is_none());
    assert_eq!(m.model.position_offset, PAD + 1);
    // No generation_config.json: FSMTConfig's defaults under config.json's own keys.
    let g = &m.generation;
    assert_eq!((g.beam, g.max_len_b, g.len_penalty), (5, 199, 1.1));
    assert!(g.early_stopping);
    assert_eq!(g.at_max_len, ragl_mt::beam::AtMaxLen::FreeEos);
    let sp = m.vocab.specials();
    assert_eq!((sp.pad, sp.bos, sp.eos, sp.unk), (1, 2, 2, 3));
    assert_eq!(m.vocab.size(), SPECIALS.len() + TARGET.len());
}

#[test]
fn equal_copies_of_the_embedding_are_shared() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_fsmt(a.path(), Layout::MergedCopies);
    write_fsmt(b.path(), Layout::MergedTied);
    let (ma, mb) = (load(a.path()).unwrap(), load(b.path()).unwrap());
    for m in [&ma, &mb] {
        assert!(m.model.src_embed.is_none() && m.model.out_proj.is_none());
    }
    assert_eq!(score(&ma), score(&mb));
}

#[test]
fn incremental_decoding_equals_teacher_forcing_with_fairseq_positions() {
    let dir = tempfile::tempdir().unwrap();
    write_fsmt(dir.path(), Layout::Separate);
    let m = load(dir.path()).unwrap();
    let src = m.vocab.encode_source("Ein Hund.").unwrap();
    let tgt = m.vocab.encode_target("a dog runs.").unwrap();
    let scored = score(&m);
    let dev = Default::default();
    let s = Tensor::<B, 2, Int>::from_data(
        TensorData::new(src.iter().map(|&x| x as i64).collect(), [1, src.len()]),
        &dev,
    );
    let (mem, pad) = m.model.encode(s);
    let mut st = m.model.start(mem, pad);
    let mut prev = m.model.specials.bos as i64;
    for (j, &want) in tgt.iter().chain([&2]).enumerate() {
        let step = m.model.step(
            Tensor::from_data(TensorData::new(vec![prev], [1]), &dev),
            &mut st,
        );
        let got = host(step.log_probs)[want as usize];
        assert!(
            (got - scored[j]).abs() < 1e-4,
            "position {j}: {got} vs {}",
            scored[j]
        );
        prev = want as i64;
    }
}

#[test]
fn text_goes_through_moses_bpe_and_the_two_maps() {
    let dir = tempfile::tempdir().unwrap();
    write_fsmt(dir.path(), Layout::Separate);
    let m = load(dir.path()).unwrap();
    // Moses splits the final period; BPE merges to ein</w> Hund</w> .</w>, but no merge
    // joins a capital E: E i n</w> are three pieces the map lacks.
    assert_eq!(
        m.vocab.encode_source("Ein Hund.").unwrap(),
        [3, 3, 3, 5, 6, 2]
    );
    assert_eq!(m.vocab.encode_source("ein Hund.").unwrap(), [4, 5, 6, 2]);
    // The target side uses the target map: a</w> dog</w> runs</w> .</w>
    assert_eq!(m.vocab.encode_target("a dog runs.").unwrap(), [4, 5, 6, 7]);
    // Pieces a map lacks are <unk>.
    assert!(m.vocab.encode_source("läuft").unwrap().contains(&3));
    // Decoding drops specials, joins subwords and detokenises in the target language.
    assert_eq!(
        m.vocab.decode(&[2, 8, 5, 6, 7, 2, 1]).unwrap(),
        "the dog runs."
    );
}

#[test]
fn broken_directories_are_refused_with_one_clear_error() {
    let check = |mutate: &dyn Fn(&Path), want: &str| {
        let dir = tempfile::tempdir().unwrap();
        write_fsmt(dir.path(), Layout::Separate);
        mutate(dir.path());
        let e = match load(dir.path()) {
            Ok(_) => panic!("loaded a broken directory ({want})"),
            Err(e) => e,
        };
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains(want), "{want:?} not in: {e}");
    };
    let edit_config = |from: &'static str, to: &'static str| {
        move |d: &Path| {
            let c = std::fs::read_to_string(d.join("config.json")).unwrap();
            assert!(c.contains(from), "{from}");
            std::fs::write(d.join("config.json"), c.replace(from, to)).unwrap()
        }
    };
    check(
        &|d| std::fs::remove_file(d.join("merges.txt")).unwrap(),
        "without merges.txt",
    );
    check(
        &|d| std::fs::write(d.join("vocab-tgt.json"), r#"{"<s>": 0, "<pad>": 1}"#).unwrap(),
        "vocabulary and model do not match",
    );
    check(
        &|d| {
            std::fs::write(
                d.join("vocab-src.json"),
                serde_json::to_string(&map(&SOURCE))
                    .unwrap()
                    .replace(r#""<pad>":1"#, r#""<pad>":9"#),
            )
            .unwrap()
        },
        "vocab-src.json",
    );
    // A REALM embedder directory passed as a translation model.
    check(
        &edit_config("\"fsmt\"", "\"realm\""),
        "model_type \"realm\"",
    );
    check(&edit_config("\"de\"", "\"fr\""), "language \"fr\"");
    check(
        &|d| {
            let p = d.join("model.safetensors");
            let mut t = Tensors::new();
            let bytes = std::fs::read(&p).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            for (name, view) in st.tensors() {
                let mut v = read_tensor(&p, &name);
                if name == "model.decoder.embed_positions.weight" {
                    v[(PAD + 3) * D] += 0.5;
                }
                t.insert(name, (view.shape().to_vec(), v));
            }
            write_safetensors(&p, &t);
        },
        "learned positions are not supported",
    );
    check(
        &|d| std::fs::remove_file(d.join("model.safetensors")).unwrap(),
        "no model.safetensors or pytorch_model.bin",
    );
}
