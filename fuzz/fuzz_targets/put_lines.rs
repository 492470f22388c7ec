#![no_main]

//! `kds put`'s line reader. The first byte is the line limit, the second the size of the
//! chunks the input arrives in; the rest is the input. Checks that the lines come out as
//! splitting the whole input at `\n` gives them (without a `\r` before the break), that a line
//! past the limit is marked and never handed on, and (with debug assertions) that the buffer
//! never holds more than the limit and two bytes.

// kds-cli is a binary with the whole stack under it; its line reader uses only `std`.
#[path = "../../kds-cli/src/lines.rs"]
mod lines;

use lines::{Line, LineBuffer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [limit, chunk, input @ ..] = data else {
        return;
    };
    let (limit, chunk) = (usize::from(*limit), usize::from(*chunk % 32) + 1);

    let mut buffer = LineBuffer::new(limit);
    let mut read = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        // A reader's buffer may hold the next line's start too.
        let (taken, ended) = buffer.push(&rest[..chunk.min(rest.len())]);
        assert!(taken > 0 && taken <= chunk);
        rest = &rest[taken..];
        if ended {
            read.push(owned(buffer.line()));
            buffer.clear();
            assert!(buffer.is_empty());
        }
    }
    if !buffer.is_empty() {
        read.push(owned(buffer.line()));
    }

    let mut expected: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if expected.last().is_some_and(|last| last.is_empty()) {
        // Input ending in a line break, or no input: no line after it.
        expected.pop();
    }
    let expected: Vec<Option<Vec<u8>>> = expected
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line.len() <= limit).then(|| line.to_vec())
        })
        .collect();
    assert_eq!(read, expected);
});

fn owned(line: Line<'_>) -> Option<Vec<u8>> {
    match line {
        Line::Data(data) => Some(data.to_vec()),
        Line::Overlong => None,
    }
}
