//! The documented KEK rotation procedure, read from docs/operations.md itself
//! so that the test runs exactly what operators are told to run: the numbered
//! steps of "Rotating the KEK (while serving)" and their fenced blocks, `sh`
//! (commands on an operator host) or `toml` (every replica's `[vault]` table,
//! then a rolling restart).

/// The document that holds the procedure, relative to the crate root.
const DOC: &str = "docs/operations.md";

/// The heading of the procedure in [`DOC`]; the procedure ends at the next
/// heading.
const HEADING: &str = "## Rotating the KEK (while serving)";

/// Where the procedure keeps secret files; tests substitute their own directory.
pub const SECRETS_DIR: &str = "/etc/paywarden/secrets/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Commands for a POSIX shell on an operator host.
    Shell,
    /// The `[vault]` table of every replica's configuration.
    Vault,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub kind: Kind,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub number: usize,
    pub blocks: Vec<Block>,
}

/// The steps, in order. Panics if the section is missing or malformed (an
/// edit of the document that the test could not follow must fail loudly).
pub fn from_docs() -> Vec<Step> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&doc)
}

fn parse(doc: &str) -> Vec<Step> {
    let mut lines = doc
        .lines()
        .skip_while(|l| l.trim_end() != HEADING)
        .skip(1)
        .take_while(|l| !l.starts_with('#'));
    let mut steps: Vec<Step> = Vec::new();
    while let Some(line) = lines.next() {
        if let Some((number, _)) = line.split_once(". ") {
            if let Ok(n) = number.parse::<usize>() {
                assert_eq!(
                    n,
                    steps.len() + 1,
                    "{DOC}: KEK rotation steps are numbered 1, 2, …: {line}"
                );
                steps.push(Step {
                    number: n,
                    blocks: Vec::new(),
                });
                continue;
            }
        }
        let trimmed = line.trim_start();
        let Some(lang) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let kind = match lang.trim() {
            "sh" => Kind::Shell,
            "toml" => Kind::Vault,
            other => panic!("{DOC} KEK rotation: a block of {other:?}, neither sh nor toml"),
        };
        let mut text = String::new();
        for body in lines.by_ref() {
            if body.trim() == "```" {
                break;
            }
            text.push_str(body.get(indent..).unwrap_or_else(|| body.trim_start()));
            text.push('\n');
        }
        let step = steps
            .last_mut()
            .unwrap_or_else(|| panic!("{DOC} KEK rotation: a block before step 1"));
        step.blocks.push(Block { kind, text });
    }
    assert!(
        steps.len() >= 4,
        "{DOC} KEK rotation: the numbered steps were not found under {HEADING:?}"
    );
    steps
}

#[test]
fn the_documented_procedure_is_readable_and_ends_with_the_old_kek_gone() {
    let steps = from_docs();
    let blocks: Vec<&Block> = steps.iter().flat_map(|s| &s.blocks).collect();
    assert!(blocks
        .iter()
        .any(|b| b.kind == Kind::Vault && b.text.contains("previous_kek_files")));
    let last = blocks.iter().rev().find(|b| b.kind == Kind::Vault).unwrap();
    assert!(
        !last.text.contains("kek-v1"),
        "the final configuration still names the old KEK"
    );
    for b in &blocks {
        assert!(
            !b.text.replace(SECRETS_DIR, "").contains("/etc/"),
            "every path is under {SECRETS_DIR}: {}",
            b.text
        );
        if b.kind == Kind::Vault {
            assert!(b.text.starts_with("[vault]\n"), "a whole [vault] table: {}", b.text);
        }
    }
}
