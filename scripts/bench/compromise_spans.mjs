// Usage: NODE_PATH=/tmp/peer/node_modules node scripts/bench/compromise_spans.mjs < passages.jsonl > spans.jsonl
// A peer salient-span annotator for issue 4's measurements: compromise (a rule- and
// lexicon-based English tagger on npm, no model download) with its dates plugin. Reads
// passages JSONL {"id","text"} on stdin, writes {"id","spans":[{"start","end","type"}]} with
// code-point offsets, the format of `ragl mask annotate`, so scripts/bench/salient_eval.py
// --annotations scores it exactly as it scores ragl.
//   cd /tmp/peer && npm install compromise@14.17.0 compromise-dates@3.9.0
//   NODE_PATH=/tmp/peer/node_modules node scripts/bench/compromise_spans.mjs < in.jsonl > out.jsonl
import { createRequire } from 'node:module';
import readline from 'node:readline';
const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + '/' : import.meta.url);
const nlp = require('compromise');
nlp.plugin(require('compromise-dates'));

const LEAD = /^(in|on|at|by|since|from|until|till|during|of|the|a|an|about|around|circa|between)\s+/i;
// compromise's matches carry the punctuation around their words ("Boston,", "March.",
// "(about"): trim it, keeping the final period of an abbreviation ("U.S.").
function trim(text, s, e) {
  for (;;) {
    const before = [s, e];
    while (s < e && /[\s,;:!?)\]"'”’(\["“‘]/.test(text[e - 1]) && !(text[e - 1] === ')' && text.slice(s, e).includes('('))) e--;
    while (s < e && /[\s("'“‘\[]/.test(text[s])) s++;
    if (text[e - 1] === '.' && !/\.[^.\s]+\.$/.test(text.slice(s, e)) && !/\b[A-Z]\.$/.test(text.slice(s, e))) e--;
    const m = text.slice(s, e).match(LEAD);
    if (m && m[0].length < e - s) s += m[0].length;
    if (before[0] === s && before[1] === e) return [s, e];
  }
}

function annotate(text) {
  const d = nlp(text);
  const kinds = [
    ['DATE', d.dates()], ['NUMBER', d.money()], ['NUMBER', d.values()],
    ['PERSON', d.people()], ['ORG', d.organizations()], ['LOC', d.places()],
    ['MISC', d.match('#ProperNoun+')],
  ];
  const cands = [];
  for (const [type, m] of kinds) {
    for (const j of m.json({ offset: true })) {
      // Its offsets can run past the end of the text (by a few characters, in 10 of
      // SQuAD's paragraphs): clamp them.
      const end = Math.min(text.length, j.offset.start + j.offset.length);
      const [s, e] = trim(text, Math.min(j.offset.start, end), end);
      if (e > s) cands.push({ s, e, type });
    }
  }
  // Non-overlapping, as ragl's are: the longest first, earlier kinds first on ties.
  cands.sort((a, b) => (b.e - b.s) - (a.e - a.s));
  const kept = [];
  for (const c of cands) if (!kept.some(k => c.s < k.e && k.s < c.e)) kept.push(c);
  kept.sort((a, b) => a.s - b.s);
  // UTF-16 offsets to code points (Python's string indexes).
  const cp = new Array(text.length + 1);
  let n = 0;
  for (let i = 0; i <= text.length; i++) {
    cp[i] = n;
    const c = text.charCodeAt(i);
    if (!(c >= 0xd800 && c <= 0xdbff)) n++;
  }
  return kept.map(k => ({ start: cp[k.s], end: cp[k.e], type: k.type }));
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  process.stdout.write(JSON.stringify({ id: r.id, spans: annotate(r.text) }) + '\n');
}
