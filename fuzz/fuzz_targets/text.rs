//! Sentence splitting, salient span annotation and chunking on arbitrary text: no panic,
//! and every range they return is ordered, in bounds and on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ragl_corpus::chunk::{ChunkConfig, Chunker};
use ragl_corpus::document::Document;
use ragl_mask::{Annotator, Gazetteer};

fuzz_target!(|text: &str| {
    let mut last = 0;
    for (s, e) in ragl_corpus::sentences::split(text) {
        assert!(last <= s && s < e && e <= text.len());
        assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        last = e;
    }
    let mut g = Gazetteer::default();
    g.observe(Some("Title"), text);
    let n = text.chars().count();
    let mut end = 0;
    for sp in Annotator::new(g).annotate(text) {
        assert!(end <= sp.start && sp.start < sp.end && sp.end <= n, "{sp:?}");
        end = sp.end;
    }
    // One token per word: the budget must hold for every passage.
    let count = |t: &[&str]| Ok(t.iter().map(|t| t.split_whitespace().count()).collect());
    let mut c = Chunker::new(ChunkConfig { max_tokens: 16, stride: 3 }, count);
    let doc = Document { id: "d".into(), title: "T".into(), text: text.into(), source: "fuzz".into() };
    c.chunk(&[doc], |p| {
        assert!(p.tokens <= 16 || p.text.split_whitespace().count() == 1, "{p:?}");
        let got: String = text.chars().skip(p.char_start).take(p.char_end - p.char_start).collect();
        assert_eq!(got, p.text);
        Ok(())
    })
    .unwrap();
});
