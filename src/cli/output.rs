//! Command output: JSON with `--json` (one document on stdout), text otherwise.

use serde_json::Value;

/// Prints a result.
pub fn print(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

/// Prints an error: `{"error": {"message": …}}` on stdout with `--json` (so
/// scripts read one stream), text on stderr otherwise.
pub fn error(json: bool, e: &anyhow::Error) {
    if json {
        println!("{}", serde_json::json!({ "error": { "message": format!("{e:#}") } }));
    } else {
        eprintln!("error: {e:#}");
    }
}
