//! The program's error: whether the input was at fault (exit code 2) or the work failed
//! (exit code 1) follows from the type of what went wrong, so a call site cannot forget it.

use crate::audio::wav::WavError;
use crate::digits::DigitsError;
use crate::nn::checkpoint::CheckpointError;
use crate::relevance::data::DataError;

/// A failure of a command, one line long, naming the file and what is wrong with it.
#[derive(Debug)]
pub enum Error {
    /// input the program refuses: a file, an argument or a setting (exit code 2)
    BadInput(anyhow::Error),
    /// work that failed on input the program accepted (exit code 1)
    Failed(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refusal of an argument or setting that has no more specific error type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgument(pub String);

impl Error {
    /// The process exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_) => 2,
            Error::Failed(_) => 1,
        }
    }

    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::BadInput(_))
    }

    /// The message, with its causes, on one line. Only the first line of each part is kept:
    /// candle appends a backtrace to some messages, which is no help to a user.
    pub fn message(&self) -> String {
        let (Error::BadInput(e) | Error::Failed(e)) = self;
        let mut parts: Vec<String> = Vec::new();
        for cause in e.chain() {
            let line = first_line(&cause.to_string());
            // an error that writes its source into its own message is followed in the chain
            // by that source: say it once
            if !line.is_empty() && !parts.iter().any(|p| p.contains(&line)) {
                parts.push(line);
            }
        }
        parts.join(": ")
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim_end().to_string()
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

/// Input the program refuses (exit code 2), whatever its type.
pub fn bad(e: impl Into<anyhow::Error>) -> Error {
    Error::BadInput(e.into())
}

/// Whether `e` is, or was caused by, a refusal of the user's input.
fn is_input_error(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<CheckpointError>()
        || e.is::<WavError>()
        || e.is::<DigitsError>()
        || e.is::<DataError>()
        || e.is::<BadArgument>()
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        if e.chain().any(is_input_error) {
            Error::BadInput(e)
        } else {
            Error::Failed(e)
        }
    }
}

/// `From` for error types whose kind is known from the type alone.
macro_rules! kind_of {
    ($variant:ident: $($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$variant(e.into())
            }
        }
    )*};
}
kind_of!(BadInput: CheckpointError, WavError, DigitsError, DataError, BadArgument);
kind_of!(Failed: candle_core::Error, std::io::Error, serde_json::Error);

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_type_decides_the_exit_code_even_inside_anyhow() {
        let refused = CheckpointError::Missing {
            path: PathBuf::from("x.safetensors"),
            name: "w".into(),
        };
        assert_eq!(Error::from(refused).exit_code(), 2);
        let wrapped = anyhow::Error::new(DataError::Spec("no such generator".into()))
            .context("reading the data");
        assert_eq!(Error::from(wrapped).exit_code(), 2);
        assert_eq!(
            Error::from(anyhow::anyhow!("a metric failed")).exit_code(),
            1
        );
        let candle = candle_core::Error::Msg("shapes differ".into()).bt();
        let e = Error::from(candle);
        assert_eq!(e.exit_code(), 1);
        assert!(!e.message().contains('\n'), "{}", e.message());
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, turning a panic into its message (first line) without printing it: the panic
/// hook stays silent for this thread during the call and prints as before everywhere else.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        first_line(&text)
    })
}

/// The length of the regular file at `path`, the one kind of file the program reads: a
/// device, pipe or socket reports a length of 0 however much it yields, so no size limit
/// could hold for one (`/dev/zero` would be read until memory runs out).
pub fn regular_file_len(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::{Error, ErrorKind};
    if path.as_os_str().is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            "an empty path names no file",
        ));
    }
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(Error::new(
            ErrorKind::IsADirectory,
            "is a folder, not a file",
        ));
    }
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "is not a regular file (a device, pipe or socket)",
        ));
    }
    Ok(meta.len())
}
