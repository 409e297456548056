//! Server-sent events: an incremental decoder of `text/event-stream` bytes,
//! bounded in memory and linear in time.
//!
//! It follows the WHATWG rules: lines end in CR, LF or CRLF (even when a CRLF
//! is split between two chunks); a line starting with `:` is a comment;
//! `field: value` drops one space after the colon, and a line without a colon
//! is a field with an empty value; `event:` names the event, `data:` lines
//! are joined with LF; an empty line dispatches the event (none if it had no
//! data; `message` if it had no name); a leading byte-order mark is skipped.
//! `id:` and `retry:` are read and ignored: usher resyncs through the room's
//! snapshot rather than resuming from an id, and paces reconnects itself.
//!
//! Two departures, both to fail loudly rather than wedge or grow:
//! - A byte that is not UTF-8 is an error, not a replacement character: a
//!   stream carrying one is corrupt or not an event stream, and an event read
//!   from it could be wrong in ways its JSON would not show. Resyncing costs
//!   one snapshot.
//! - A line longer than [`MAX_STREAM_LINE`] or an event larger than
//!   [`MAX_STREAM_EVENT`] is an error as soon as it passes the cap, so a line
//!   that never ends costs at most the cap.
//!
//! Every byte is looked at a constant number of times: a line that arrives in
//! one chunk is read in place, one split across chunks is copied once.

use std::collections::VecDeque;

use crate::limits::{MAX_STREAM_EVENT, MAX_STREAM_LINE};

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The `event:` name (`message` when there was none).
    pub name: String,
    /// The `data:` lines, joined with LF.
    pub data: String,
}

/// Why the bytes cannot be decoded. Lines are counted from 1, bytes within a
/// line from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A byte that is not UTF-8.
    #[error("line {line}, byte {column}: not UTF-8")]
    InvalidUtf8 {
        /// The line.
        line: u64,
        /// The first byte that is not UTF-8.
        column: usize,
    },
    /// A line longer than the cap; what came after was not read.
    #[error("line {line} is longer than {limit} bytes ({read} bytes of it read and dropped)")]
    LineTooLong {
        /// The line.
        line: u64,
        /// The cap.
        limit: usize,
        /// How much of the line had arrived when it passed the cap.
        read: usize,
    },
    /// An event whose lines add up to more than the cap.
    #[error("the event at line {line} is larger than {limit} bytes")]
    EventTooLarge {
        /// The line that took it past the cap.
        line: u64,
        /// The cap.
        limit: usize,
    },
}

/// A line buffer bigger than this is given back once its line is read, so a
/// rare long line does not keep its memory for the life of the stream.
const KEPT_LINE_CAPACITY: usize = 16 * 1024;

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a stream fed to it in chunks of any size.
#[derive(Debug)]
pub struct SseDecoder {
    max_line: usize,
    max_event: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last chunk ended in CR: an LF opening the next one belongs to it.
    after_cr: bool,
    /// Lines completed so far.
    lines: u64,
    name: String,
    /// The `data:` values, each followed by LF (as the spec builds it).
    data: String,
    /// Set by the first error; the decoder then refuses everything.
    failed: Option<SseError>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new()
    }
}

impl SseDecoder {
    /// A decoder with the caps in [`crate::limits`].
    pub fn new() -> Self {
        SseDecoder::with_limits(MAX_STREAM_LINE, MAX_STREAM_EVENT)
    }

    /// A decoder with other caps on a line and an event, in bytes.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseDecoder {
            max_line,
            max_event,
            partial: Vec::new(),
            after_cr: false,
            lines: 0,
            name: String::new(),
            data: String::new(),
            failed: None,
        }
    }

    /// Decodes the next chunk, adding every event it completes to `events`.
    /// After an error the stream is unusable: every later call returns it.
    pub fn decode(&mut self, chunk: &[u8], events: &mut VecDeque<Frame>) -> Result<(), SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let decoded = self.decode_chunk(chunk, events);
        if let Err(err) = &decoded {
            self.failed = Some(err.clone());
            self.partial = Vec::new();
        }
        decoded
    }

    /// Bytes held for a line not yet complete (bounded by the line cap).
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    fn decode_chunk(&mut self, chunk: &[u8], events: &mut VecDeque<Frame>) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while !rest.is_empty() {
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.check_line_length(rest.len())?;
                self.partial.extend_from_slice(rest);
                return Ok(());
            };
            let piece = &rest[..end];
            let ended_by_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if ended_by_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.check_line_length(piece.len())?;
            if self.partial.is_empty() {
                self.line(piece, events)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(piece);
                self.line(&line, events)?;
                if line.capacity() <= KEPT_LINE_CAPACITY {
                    line.clear();
                    self.partial = line;
                }
            }
        }
        Ok(())
    }

    /// Fails if `more` bytes would take the current line past the cap.
    fn check_line_length(&self, more: usize) -> Result<(), SseError> {
        let read = self.partial.len() + more;
        if read > self.max_line {
            return Err(SseError::LineTooLong {
                line: self.lines + 1,
                limit: self.max_line,
                read,
            });
        }
        Ok(())
    }

    /// Interprets one whole line (without its end).
    fn line(&mut self, line: &[u8], events: &mut VecDeque<Frame>) -> Result<(), SseError> {
        self.lines += 1;
        let line = match line.strip_prefix(BYTE_ORDER_MARK) {
            Some(rest) if self.lines == 1 => rest,
            _ => line,
        };
        let text = std::str::from_utf8(line).map_err(|err| SseError::InvalidUtf8 {
            line: self.lines,
            column: err.valid_up_to() + 1,
        })?;
        if text.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if text.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "event" => {
                self.name.clear();
                self.name.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            _ => return Ok(()),
        }
        if self.name.len() + self.data.len() > self.max_event {
            return Err(SseError::EventTooLarge {
                line: self.lines,
                limit: self.max_event,
            });
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut VecDeque<Frame>) {
        if self.data.is_empty() {
            self.name.clear();
            return;
        }
        self.data.pop();
        let name = if self.name.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.name)
        };
        events.push_back(Frame {
            name,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in(chunks: &[&[u8]]) -> Result<Vec<Frame>, SseError> {
        let mut decoder = SseDecoder::new();
        let mut events = VecDeque::new();
        for chunk in chunks {
            decoder.decode(chunk, &mut events)?;
        }
        Ok(events.into())
    }

    fn frame(name: &str, data: &str) -> Frame {
        Frame {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn fields_follow_the_spec() {
        let stream = b"\xEF\xBB\xBFevent: a\ndata: 1\ndata:2\n\n: comment\ndata\n\nevent: b\nid: 7\nretry: 10\n\ndata:  x\nbogus\n\n";
        assert_eq!(
            decode_in(&[stream]).unwrap(),
            [
                frame("a", "1\n2"),
                frame("message", ""),
                frame("message", " x")
            ],
            "an event without data is not dispatched, and its name does not carry over"
        );
    }

    #[test]
    fn every_line_ending_and_every_split_reads_the_same() {
        let stream = b"event: a\r\ndata: 1\rdata: 2\n\r\nevent: b\rdata: 3\r\r";
        let whole = decode_in(&[stream]).unwrap();
        assert_eq!(whole, [frame("a", "1\n2"), frame("b", "3")]);
        for split in 0..stream.len() {
            let (head, tail) = stream.split_at(split);
            assert_eq!(decode_in(&[head, tail]).unwrap(), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_in(&bytes).unwrap(), whole, "byte by byte");
    }

    #[test]
    fn a_byte_that_is_not_utf8_is_an_error_naming_where() {
        assert_eq!(
            decode_in(&[b"data: 1\n\n: \xff\n\n"]),
            Err(SseError::InvalidUtf8 { line: 3, column: 3 })
        );
        assert_eq!(
            decode_in(&[b"data: caf\xC3", b"\xA9\n\n"]).unwrap(),
            [frame("message", "caf\u{e9}")],
            "a character split between chunks is fine"
        );
    }

    #[test]
    fn a_line_past_the_cap_fails_as_soon_as_it_passes() {
        let mut decoder = SseDecoder::with_limits(10, 100);
        let mut events = VecDeque::new();
        decoder.decode(b"data: 1\n\ndata: ", &mut events).unwrap();
        decoder.decode(b"1234", &mut events).unwrap();
        assert_eq!(decoder.buffered(), 10);
        assert_eq!(
            decoder.decode(b"5", &mut events),
            Err(SseError::LineTooLong {
                line: 3,
                limit: 10,
                read: 11
            })
        );
        assert_eq!(decoder.buffered(), 0, "what was held is let go");
        assert!(
            decoder.decode(b"\n\n", &mut events).is_err(),
            "and it stays failed"
        );
        assert_eq!(events, [frame("message", "1")]);
    }

    #[test]
    fn an_event_past_the_cap_fails() {
        let mut decoder = SseDecoder::with_limits(20, 10);
        let mut events = VecDeque::new();
        assert_eq!(
            decoder.decode(b"data: 12345\ndata: 67890\n", &mut events),
            Err(SseError::EventTooLarge { line: 2, limit: 10 })
        );
    }
}
