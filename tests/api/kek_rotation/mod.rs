//! KEK rotation as an operator runs it: `secrets generate --output` writes a
//! new KEK owner-only and never over another.

use std::os::unix::fs::PermissionsExt;

#[test]
fn secrets_generate_writes_an_owner_only_file_and_never_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek-v2");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_paywarden"))
            .args(args)
            .current_dir(dir.path())
            .env("PAYWARDEN_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["secrets", "generate", "--output", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the secret goes to the file only");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = std::fs::read_to_string(&path).unwrap();
    let _32_bytes = crate::support::kek(written.trim());
    // A second run must not replace a KEK that may already wrap data keys.
    let again = run(&["secrets", "generate", "--output", path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("kek-v2"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "the existing file is untouched"
    );
    assert!(!String::from_utf8_lossy(&again.stderr).contains(written.trim()));
}
