//! sacrebleu-style reproducibility signatures: `key:value` pairs joined by `|`, ending
//! with the version, here `version:ragl-<x.y.z>` so a reader knows which tool scored.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub fields: Vec<(&'static str, String)>,
}

impl Signature {
    pub fn new(fields: Vec<(&'static str, String)>) -> Self {
        Signature { fields }
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, v) in &self.fields {
            write!(f, "{k}:{v}|")?;
        }
        write!(f, "version:ragl-{}", env!("CARGO_PKG_VERSION"))
    }
}
