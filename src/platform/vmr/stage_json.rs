//! A fast reader for `stage` payloads.
//!
//! Voice activity changes the stage several times a second, so in a busy
//! room most events are stage frames, each listing up to two dozen places;
//! through serde they took four fifths of all decoding time. [`read`] reads
//! the one shape servers send (the seed API's and Pexip's): an array of
//! objects holding exactly `participant_uuid` (a string without escapes),
//! `stage_index` and `vad` (plain integers), in any order and with any
//! spacing. Anything else (another field, an escape, a number written as
//! text, a malformed frame) makes it return `None`, and the frame is read by
//! serde as before. What it accepts it reads exactly as serde would.

use crate::model::StageEntry;

/// Reads a stage payload of the usual shape; `None` for anything else.
pub(crate) fn read(data: &str) -> Option<Vec<StageEntry>> {
    let mut cursor = Cursor { text: data, at: 0 };
    cursor.skip_space();
    cursor.expect(b'[')?;
    let mut entries = Vec::with_capacity(16);
    cursor.skip_space();
    if cursor.peek() == Some(b']') {
        cursor.at += 1;
    } else {
        loop {
            entries.push(cursor.entry()?);
            cursor.skip_space();
            match cursor.next()? {
                b',' => cursor.skip_space(),
                b']' => break,
                _ => return None,
            }
        }
    }
    cursor.skip_space();
    (cursor.at == data.len()).then_some(entries)
}

/// The length of a canonical uuid, tried first.
const UUID_LEN: usize = 36;

/// The keys of a stage entry.
enum Field {
    Uuid,
    StageIndex,
    Vad,
}

/// True when `bytes` hold no quote, backslash or control character: the
/// same text inside a JSON string as outside it.
fn plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |plain, &byte| {
        plain & (byte != b'"') & (byte != b'\\') & (byte >= 0x20)
    })
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Skips what JSON counts as whitespace.
    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// `{ "participant_uuid": …, "stage_index": …, "vad": … }`, each once.
    fn entry(&mut self) -> Option<StageEntry> {
        self.expect(b'{')?;
        let (mut uuid, mut index, mut vad) = (None, None, None);
        loop {
            self.skip_space();
            let field = self.field()?;
            self.skip_space();
            self.expect(b':')?;
            self.skip_space();
            match field {
                Field::Uuid if uuid.is_none() => uuid = Some(self.string()?),
                Field::StageIndex if index.is_none() => index = Some(self.integer()?),
                Field::Vad if vad.is_none() => vad = Some(self.integer()?),
                _ => return None,
            }
            self.skip_space();
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        Some(StageEntry {
            participant_uuid: uuid?.to_owned(),
            stage_index: index?,
            vad: vad?,
        })
    }

    /// One of the three keys, quotes included, written without escapes.
    fn field(&mut self) -> Option<Field> {
        let (field, len) = match self.text.as_bytes().get(self.at + 1)? {
            b'p' => (Field::Uuid, self.key(b"\"participant_uuid\"")?),
            b's' => (Field::StageIndex, self.key(b"\"stage_index\"")?),
            b'v' => (Field::Vad, self.key(b"\"vad\"")?),
            _ => return None,
        };
        self.at += len;
        Some(field)
    }

    /// The length of `key` when the text goes on with it.
    fn key<const N: usize>(&self, key: &[u8; N]) -> Option<usize> {
        let next = self.text.as_bytes().get(self.at..self.at + N)?;
        (<&[u8; N]>::try_from(next).ok()? == key).then_some(N)
    }

    /// A string with neither escapes nor control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let len = match rest.get(UUID_LEN) {
            Some(b'"') if plain(&rest[..UUID_LEN]) => UUID_LEN,
            _ => {
                let len = memchr::memchr(b'"', rest)?;
                plain(&rest[..len]).then_some(len)?
            }
        };
        let text = &self.text[self.at..self.at + len];
        self.at += len + 1;
        Some(text)
    }

    /// An integer of at most 15 digits (so that, like serde's reading
    /// through a float, it is exact), as JSON writes integers.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = &self.text.as_bytes()[start..self.at];
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        let fraction = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if digits.is_empty() || digits.len() > 15 || leading_zero || fraction {
            return None;
        }
        let value = digits
            .iter()
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'));
        Some(if negative { -value } else { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_serde(data: &str) -> Option<Vec<StageEntry>> {
        super::super::codec::stage_by_serde(data)
    }

    /// The fast reader either declines or agrees with serde.
    fn agrees(data: &str) -> bool {
        match read(data) {
            None => true,
            Some(entries) => by_serde(data) == Some(entries),
        }
    }

    const SEED_EXAMPLE: &str = "[\n{\n  \"stage_index\": 0,\n  \"participant_uuid\": \"a0196175-b462-48a1-b95c-f322c3af57c1\",\n  \"vad\": 0},\n{\n  \"stage_index\": 1,\n  \"participant_uuid\": \"65b4af2f-657a-4081-98a8-b17667628ce3\",\n  \"vad\": 0}\n]";

    #[test]
    fn reads_the_shapes_servers_send() {
        let compact = r#"[{"participant_uuid":"b-1","stage_index":0,"vad":100},{"participant_uuid":"Zoë","stage_index":1,"vad":-0}]"#;
        let widest =
            r#"[{"participant_uuid":"a","stage_index":-999999999999999,"vad":999999999999999}]"#;
        let pexip = include_str!("../../../tests/fixtures/pexip-payloads/stage.json");
        for data in [compact, widest, pexip, SEED_EXAMPLE, " [ ] ", "[]"] {
            let read = read(data).unwrap_or_else(|| panic!("declined {data}"));
            assert_eq!(Some(read), by_serde(data), "{data}");
        }
        assert_eq!(read(compact).unwrap()[0].vad, 100);
    }

    #[test]
    fn declines_what_it_does_not_read_exactly() {
        for data in [
            "",
            "null",
            "{}",
            "[1]",
            r#"[{"participant_uuid":"a\"b","stage_index":0,"vad":0}]"#,
            r#"[{"participant_uuid":"a","stage_index":"0","vad":0}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":1.5}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":1e2}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":01}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":12345678901234567890}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":9007199254740993}]"#,
            r#"[{"participant_uuid":"a","stage_index":0}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":0,"vad":1}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":0,"extra":1}]"#,
            r#"[{"participant_uuid":7,"stage_index":0,"vad":0}]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":0},]"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":0}] x"#,
            r#"[{"participant_uuid":"a","stage_index":0,"vad":0}"#,
            "[{\"participant_uuid\":\"a\tb\",\"stage_index\":0,\"vad\":0}]",
        ] {
            assert_eq!(read(data), None, "{data}");
        }
    }

    #[test]
    fn never_disagrees_with_serde_on_mangled_frames() {
        let mut rng = fastrand::Rng::with_seed(11);
        let bytes: Vec<u8> = SEED_EXAMPLE.bytes().collect();
        let alphabet = b" \t\n[]{},:\"\\-0123456789.eE_abcdvx";
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut mangled = bytes.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..mangled.len());
                match rng.u8(0..3) {
                    0 => mangled[at] = alphabet[rng.usize(0..alphabet.len())],
                    1 => {
                        mangled.remove(at);
                    }
                    _ => mangled.insert(at, alphabet[rng.usize(0..alphabet.len())]),
                }
            }
            let data = String::from_utf8_lossy(&mangled);
            assert!(agrees(&data), "{data}");
            accepted += usize::from(read(&data).is_some());
        }
        assert!(accepted > 100, "only {accepted} mangled frames were read");
    }
}
