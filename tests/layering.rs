//! The dependency direction between the top-level modules: a module may use the ones below it
//! in [`LAYERS`], never one above. A new upward `use crate::…` fails this test; so does an entry
//! of [`KNOWN_UPWARD`] that no longer exists (the list only shrinks).

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top. Modules on one line share a layer and may not use each other.
const LAYERS: &[&[&str]] = &[
    &["pyjson", "zeek"],
    &["source", "enrich"],
    &["model"],
    &["timeline"],
    &["join"],
    &["profile"],
    &["store"],
    &["config"],
    &["ingest"],
    &["inspect", "replay"],
];

/// Upward uses that exist and are still to be untangled: (from, to). None today; a new one is
/// a design change to discuss, not to list here.
const KNOWN_UPWARD: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`None`: the crate root or the binary).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every (from, to) pair of top-level modules where a file of `from` names `crate::to`
/// outside comments.
fn uses(src: &Path) -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = BTreeSet::new();
    for file in files {
        let Some(from) = module_of(src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                if code[..at].ends_with('_') || code[..at].ends_with(char::is_alphanumeric) {
                    continue; // `kalipso_crate::` and the like
                }
                let rest = &code[at + "crate::".len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    out.insert((from.clone(), to));
                }
            }
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = uses(&src);
    let mut upward = Vec::new();
    for (from, to) in &found {
        let (Some(f), Some(t)) = (layer_of(from), layer_of(to)) else {
            panic!("module {from} or {to} is not in LAYERS: place it");
        };
        if t >= f && !KNOWN_UPWARD.contains(&(from.as_str(), to.as_str())) {
            upward.push(format!("{from} uses {to}"));
        }
    }
    assert!(upward.is_empty(), "upward (or same-layer) uses: {upward:?}");
    for (from, to) in KNOWN_UPWARD {
        assert!(
            found.contains(&(from.to_string(), to.to_string())),
            "{from} no longer uses {to}: remove it from KNOWN_UPWARD"
        );
    }
}

#[test]
fn the_checker_sees_an_upward_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zeek")).unwrap();
    std::fs::write(
        dir.path().join("zeek/x.rs"),
        "// crate::store in a comment\nuse crate::store::keys;\nuse crate::zeek::Record;\n",
    )
    .unwrap();
    let found = uses(dir.path());
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [("zeek".to_string(), "store".to_string())]
    );
}
