//! `ragl synth`: the seeded toy data of `ragl_synth` written to disk, and `ragl model init`:
//! a BERT with random weights in Hugging Face layout, for training from scratch.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use ragl_model::bert::BertConfig;
use ragl_synth::parallel::{self, ParallelConfig};
use ragl_synth::world::{World, WorldConfig};

#[derive(clap::Subcommand)]
pub enum SynthCommand {
    /// A fictional encyclopedia: docs.jsonl (biographies, city and organisation pages that
    /// state every fact twice), qa.json (SQuAD layout: where/when born, occupation,
    /// employer of every person) and vocab.txt (every word, for BERTs trained from scratch).
    World(WorldArgs),
    /// A toy translation pair, general and medical domains:
    /// {general,medical}.{train,dev,test}.{src,tgt}.
    Parallel(ParallelArgs),
}

#[derive(clap::Args)]
pub struct WorldArgs {
    /// Output directory: docs.jsonl, qa.json (SQuAD layout), vocab.txt.
    #[arg(long)]
    pub out: PathBuf,
    /// Invented people.
    #[arg(long, default_value_t = 240)]
    pub people: usize,
    /// Invented cities.
    #[arg(long, default_value_t = 24)]
    pub cities: usize,
    /// Invented organisations.
    #[arg(long, default_value_t = 12)]
    pub organisations: usize,
    /// Seed: the same seed gives the same world.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(clap::Args)]
pub struct ParallelArgs {
    /// Output directory of the line-aligned .src/.tgt files.
    #[arg(long)]
    pub out: PathBuf,
    /// General-domain training pairs.
    #[arg(long, default_value_t = 12_000)]
    pub general_train: usize,
    /// Medical sentences mixed into general.train.
    #[arg(long, default_value_t = 150)]
    pub medical_in_general: usize,
    /// Medical-domain training pairs (the kNN datastore text).
    #[arg(long, default_value_t = 3_000)]
    pub medical_train: usize,
    /// Dev pairs per domain.
    #[arg(long, default_value_t = 200)]
    pub dev: usize,
    /// Test pairs per domain.
    #[arg(long, default_value_t = 300)]
    pub test: usize,
    /// Seed: the same seed gives the same pairs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(c: SynthCommand) -> Result<()> {
    match c {
        SynthCommand::World(a) => {
            if a.people == 0 || a.cities == 0 || a.organisations == 0 {
                crate::bad_input!("--people, --cities and --organisations must be at least 1");
            }
            let w = World::generate(&WorldConfig {
                people: a.people,
                cities: a.cities,
                organisations: a.organisations,
                seed: a.seed,
                ..Default::default()
            });
            w.write(&a.out)?;
            println!(
                "wrote {} documents and {} questions to {}",
                w.documents().len(),
                w.questions().len(),
                a.out.display()
            );
        }
        SynthCommand::Parallel(a) => {
            parallel::write(
                &ParallelConfig {
                    general_train: a.general_train,
                    medical_in_general: a.medical_in_general,
                    medical_train: a.medical_train,
                    dev: a.dev,
                    test: a.test,
                    seed: a.seed,
                },
                &a.out,
            )?;
            println!(
                "wrote the general and medical splits to {}",
                a.out.display()
            );
        }
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// A randomly initialised BERT (HF `_init_weights`) in Hugging Face layout:
    /// config.json, model.safetensors, vocab.txt. With `--mlm`, a BertForMaskedLM.
    Init(InitArgs),
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// WordPiece vocabulary (one token per line, `[PAD]` first), copied into the model.
    #[arg(long)]
    pub vocab: PathBuf,
    /// The checkpoint directory to write (HF layout).
    #[arg(long)]
    pub out: PathBuf,
    /// Transformer layers.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Attention heads (must divide --hidden).
    #[arg(long, default_value_t = 2)]
    pub heads: usize,
    /// Feed-forward width (default 4 × hidden).
    #[arg(long)]
    pub ff: Option<usize>,
    /// Longest input, in word pieces.
    #[arg(long, default_value_t = 512)]
    pub max_positions: usize,
    /// Include the MLM head (a knowledge-augmented encoder for `ragl pretrain`).
    #[arg(long)]
    pub mlm: bool,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn model(c: ModelCommand) -> Result<()> {
    let ModelCommand::Init(a) = c;
    let vocab = std::fs::read_to_string(&a.vocab)
        .with_context(|| format!("reading {}", a.vocab.display()))?;
    let n = vocab.lines().count();
    if n < 5 {
        crate::bad_input!(
            "{}: a vocabulary needs at least the 5 special tokens",
            a.vocab.display()
        );
    }
    let mut cfg = BertConfig::tiny(n);
    cfg.hidden_size = a.hidden;
    cfg.num_hidden_layers = a.layers;
    cfg.num_attention_heads = a.heads;
    cfg.intermediate_size = a.ff.unwrap_or(4 * a.hidden);
    cfg.max_position_embeddings = a.max_positions;
    if !a.mlm {
        cfg.architectures = Some(vec!["BertModel".into()]);
    }
    if let Err(e) = cfg.validate() {
        crate::bad_input!("{e}");
    }
    type B = burn::backend::Flex;
    let device = Default::default();
    B::seed(&device, a.seed);
    let (bert, head) = cfg.init::<B>(false, &device);
    ragl_model::checkpoint::save(&a.out, &cfg, &bert, a.mlm.then_some(&head))?;
    ragl_core::atomic::write_bytes_atomic(&a.out.join("vocab.txt"), vocab.as_bytes())?;
    println!(
        "{}: BERT {} layers, hidden {}, {} heads, vocabulary {n}{}",
        a.out.display(),
        a.layers,
        a.hidden,
        a.heads,
        if a.mlm { ", with MLM head" } else { "" }
    );
    Ok(())
}
