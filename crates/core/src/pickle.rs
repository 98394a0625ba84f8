//! A pickle reader that never executes anything: the opcodes of the data pickles ragl meets
//! (NumPy object arrays in `.npy` files, PyTorch's `pytorch_model.bin` state dicts) are
//! interpreted into a tree of [`Value`]s, and a global (a Python callable) is accepted only
//! from the caller's allow-list and only *recorded* — a call is a [`Value::Call`] node the
//! caller reads as data, never a function run. Any other opcode (instance creation,
//! text-mode integers, extensions…) ends the read with an error that names it. The same
//! rule as `torch.load(weights_only=True)`, stricter: nothing outside the list is imported.
//!
//! Byte strings are not copied: [`Value::Bytes`] holds a range of the input, so a
//! multi-gigabyte object array read from a memory map stays in the map.

use std::ops::Range;

/// An index into [`Pickle::values`].
pub type Id = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A byte string: its range in the input.
    Bytes(Range<usize>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// An allowed global (`module`, `name`).
    Global(String, String),
    /// `REDUCE`: a callable applied to an argument tuple, recorded.
    Call(Id, Id),
    /// `BUILD`: an object and the state it would be given, recorded.
    Build(Id, Id),
    /// `BINPERSID`: a persistent id (PyTorch's storages).
    Persistent(Id),
}

/// A parsed pickle: every value it made, and the one `STOP` returned.
#[derive(Debug)]
pub struct Pickle {
    pub values: Vec<Value>,
    pub root: Id,
}

/// Why a pickle was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("byte {offset}: {message}")]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
}

impl Pickle {
    pub fn get(&self, id: Id) -> &Value {
        &self.values[id]
    }

    /// The tuple or list elements of `id`, if it is one.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    pub fn int(&self, id: Id) -> Option<i64> {
        match self.get(id) {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn str(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether `id` is the global `module.name`.
    pub fn is_global(&self, id: Id, module: &str, name: &str) -> bool {
        matches!(self.get(id), Value::Global(m, n) if m == module && n == name)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    allowed: &'a [(&'a str, &'a str)],
    values: Vec<Value>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, Id>,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>, PickleError> {
        if n > self.buf.len() - self.pos {
            return self.fail(format!("truncated: {n} bytes wanted"));
        }
        self.pos += n;
        Ok(self.pos - n..self.pos)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let r = self.take(n)?;
        Ok(self.buf[r]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.uint(n)?;
        usize::try_from(v).or_else(|_| self.fail("length out of range"))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("unterminated line");
        };
        let s = std::str::from_utf8(&rest[..end])
            .map(str::to_string)
            .or_else(|_| self.fail("a global's name is not UTF-8"))?;
        self.pos += end + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<String, PickleError> {
        let r = self.take(n)?;
        std::str::from_utf8(&self.buf[r])
            .map(str::to_string)
            .or_else(|_| self.fail("a string is not UTF-8"))
    }

    fn push(&mut self, v: Value) {
        self.values.push(v);
        self.stack.push(self.values.len() - 1);
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.fail("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(m) = self.marks.pop() else {
            return self.fail("no mark");
        };
        if m > self.stack.len() {
            return self.fail("mark above the stack");
        }
        Ok(self.stack.split_off(m))
    }

    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        if !self.allowed.iter().any(|(m, n)| *m == module && *n == name) {
            return self.fail(format!(
                "the pickle refers to {module}.{name}, which is not data ragl reads; nothing was run"
            ));
        }
        self.push(Value::Global(module, name));
        Ok(())
    }

    fn top(&mut self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(&id) => Ok(id),
            None => self.fail("stack underflow"),
        }
    }

    fn extend_list(&mut self, items: Vec<Id>) -> Result<(), PickleError> {
        let target = self.top()?;
        match &mut self.values[target] {
            Value::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => self.fail("APPEND to something that is not a list"),
        }
    }

    fn set_items(&mut self, items: Vec<Id>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.fail("SETITEMS with an odd number of items");
        }
        let target = self.top()?;
        let pairs: Vec<(Id, Id)> = items.chunks(2).map(|c| (c[0], c[1])).collect();
        match &mut self.values[target] {
            Value::Dict(v) => {
                v.extend(pairs);
                Ok(())
            }
            _ => self.fail("SETITEM on something that is not a dict"),
        }
    }

    fn run(mut self) -> Result<Pickle, PickleError> {
        loop {
            let Some(&op) = self.buf.get(self.pos) else {
                return self.fail("no STOP");
            };
            self.pos += 1;
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        values: self.values,
                        root,
                    });
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    self.global(m, n)?;
                }
                0x93 => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (&self.values[m], &self.values[n]) else {
                        return self.fail("STACK_GLOBAL without two strings");
                    };
                    let (m, n) = (m.clone(), n.clone());
                    self.global(m, n)?;
                }
                b'X' => {
                    let n = self.len(4)?;
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.len(1)?;
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.len(8)?;
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                b'B' | b'C' | 0x8e => {
                    let w = match op {
                        b'B' => 4,
                        b'C' => 1,
                        _ => 8,
                    };
                    let n = self.len(w)?;
                    let r = self.take(n)?;
                    self.push(Value::Bytes(r));
                }
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return self.fail("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Value::Tuple(items));
                }
                b']' => self.push(Value::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.len(1)?;
                    if n > 8 {
                        return self.fail("an integer wider than 64 bits");
                    }
                    let r = self.take(n)?;
                    let bytes = &self.buf[r];
                    let mut v: i64 = 0;
                    for (i, &b) in bytes.iter().enumerate() {
                        v |= i64::from(b) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let r = self.take(8)?;
                    let v = f64::from_be_bytes(self.buf[r].try_into().expect("8 bytes"));
                    self.push(Value::Float(v));
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    if !matches!(self.values[f], Value::Global(..)) {
                        return self.fail("REDUCE of something that is not an allowed global");
                    }
                    // An OrderedDict() is an empty dict that SETITEMS may fill.
                    let empty = matches!(&self.values[args], Value::Tuple(a) if a.is_empty());
                    if empty
                        && matches!(&self.values[f], Value::Global(m, n) if m == "collections" && n == "OrderedDict")
                    {
                        self.push(Value::Dict(Vec::new()));
                    } else {
                        self.push(Value::Call(f, args));
                    }
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    // In place, so that memo references see the built object.
                    let old = std::mem::replace(&mut self.values[obj], Value::None);
                    self.values.push(old);
                    let moved = self.values.len() - 1;
                    self.values[obj] = Value::Build(moved, state);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Value::Persistent(pid));
                }
                0x94 => {
                    let top = self.top()?;
                    let k = self.memo.len() as u64;
                    self.memo.insert(k, top);
                }
                b'q' | b'r' => {
                    let k = self.uint(if op == b'q' { 1 } else { 4 })?;
                    let top = self.top()?;
                    self.memo.insert(k, top);
                }
                b'h' | b'j' => {
                    let k = self.uint(if op == b'h' { 1 } else { 4 })?;
                    let Some(&id) = self.memo.get(&k) else {
                        return self.fail(format!("memo {k} was never stored"));
                    };
                    self.stack.push(id);
                }
                other => {
                    return self.fail(format!(
                        "opcode 0x{other:02x} is not one of the data opcodes ragl reads; nothing was run"
                    ));
                }
            }
        }
    }
}

/// Parses a pickle; `allowed` names the globals (`module`, `name`) it may refer to.
pub fn parse(buf: &[u8], allowed: &[(&str, &str)]) -> Result<Pickle, PickleError> {
    Reader {
        buf,
        pos: 0,
        allowed,
        values: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    // `pickle.dumps([b"ab", b"c", 7], protocol=3)`
    const LIST: &[u8] = b"\x80\x03]q\x00(C\x02abq\x01C\x01cq\x02K\x07e.";

    #[test]
    fn reads_data_without_running_anything() {
        let p = parse(LIST, &[]).unwrap();
        let items = p.items(p.root).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(p.get(items[0]), &Value::Bytes(8..10));
        assert_eq!(&LIST[8..10], b"ab");
        assert_eq!(p.int(items[2]), Some(7));
    }

    #[test]
    fn refuses_globals_off_the_list_and_code_opcodes() {
        // `pickle.dumps(os.system)` style: a GLOBAL the caller did not allow.
        let e = parse(b"\x80\x02cposix\nsystem\nq\x00.", &[("numpy", "dtype")]).unwrap_err();
        assert!(e.message.contains("posix.system"), "{e}");
        // INST ('i'), which would create an instance.
        let e = parse(b"(i__main__\nX\n.", &[]).unwrap_err();
        assert!(e.message.contains("opcode 0x69"), "{e}");
        // Truncated input and a missing STOP are errors, not panics.
        assert!(parse(b"\x80\x03C\x09ab", &[]).is_err());
        assert!(parse(b"\x80\x03]", &[]).is_err());
        assert!(parse(b"", &[]).is_err());
    }

    #[test]
    fn long1_is_signed() {
        // LONG1 of -2 (one byte 0xfe) and of 300 (two bytes).
        let p = parse(b"\x8a\x01\xfe.", &[]).unwrap();
        assert_eq!(p.int(p.root), Some(-2));
        let p = parse(b"\x8a\x02\x2c\x01.", &[]).unwrap();
        assert_eq!(p.int(p.root), Some(300));
    }
}
