//! Why a command failed, as one line for the terminal, and the exit status that goes with it:
//! 2 for bad usage (flags, values), 1 for everything that went wrong while running.

use std::fmt;

use crate::terminal::escape_text;

/// A command's failure.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    usage: bool,
}

impl Failure {
    /// Something went wrong while running (exit status 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage: false,
        }
    }

    /// The command line was wrong (exit status 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage: true,
        }
    }

    /// The same failure, said to happen at `at`.
    pub(crate) fn context(mut self, at: &str) -> Self {
        self.message = format!("{at}: {}", self.message);
        self
    }

    /// The process's exit status.
    pub(crate) fn exit_status(&self) -> u8 {
        if self.usage { 2 } else { 1 }
    }
}

impl fmt::Display for Failure {
    /// One line: line breaks in the message (from a service's text) become spaces, and other
    /// control characters are escaped so that a server's text cannot drive the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = self.message.split_whitespace();
        if let Some(first) = words.next() {
            f.write_str(&escape_text(first))?;
        }
        for word in words {
            write!(f, " {}", escape_text(word))?;
        }
        Ok(())
    }
}

impl From<kds_client::Error> for Failure {
    fn from(error: kds_client::Error) -> Self {
        Self::new(error.to_string())
    }
}

impl From<kds_efo::Error> for Failure {
    fn from(error: kds_efo::Error) -> Self {
        Self::new(error.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::new(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_statuses_follow_the_kind() {
        let failure = Failure::new("GetRecords: the service said\n  no  (request id 1)");
        assert_eq!(
            failure.to_string(),
            "GetRecords: the service said no (request id 1)"
        );
        assert_eq!(failure.exit_status(), 1);
        assert_eq!(Failure::usage("bad flag").exit_status(), 2);
    }

    #[test]
    fn escape_sequences_in_a_servers_text_are_escaped() {
        let failure = Failure::new("ResourceNotFoundException: \u{1b}[2J\u{1b}]0;owned\u{7}gone");
        let shown = failure.to_string();
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains("\\u{1b}[2J"), "{shown}");
    }
}
