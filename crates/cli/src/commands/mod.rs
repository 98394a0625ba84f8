//! One module per command group: each parses its flags (clap `Args`), builds library
//! objects, calls them, and prints.

pub mod corpus;
pub mod embed;
pub mod eval;
pub mod finetune_qa;
pub mod index;
pub mod knnlm;
pub mod knnmt;
pub mod lm;
pub mod mask;
pub mod mt;
pub mod pretrain;
pub mod qa;
pub mod quickstart;
pub mod synth;
