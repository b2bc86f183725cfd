//! The layers' rule, checked: a module names only the layers below it (README's map of the modules). A new
//! `use crate::api::…` in `store`, say, fails this test rather than growing a cycle.
use std::path::{Path, PathBuf};

/// Each layer (a folder or file under `src/`) and the layers it must not name.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("domain", &["api", "app", "actors", "store", "providers", "guards", "notify", "settings", "harness", "documents"]),
    ("documents", &["api", "app", "actors", "store", "providers", "guards", "notify", "settings", "harness"]),
    ("html.rs", &["api", "app", "actors", "store", "providers", "guards", "notify", "settings", "harness"]),
    ("prometheus.rs", &["api", "app", "actors", "store", "providers", "guards", "notify", "settings", "harness"]),
    ("settings.rs", &["api", "app", "actors", "store", "providers", "guards", "notify", "harness"]),
    ("store", &["api", "app", "actors", "providers", "guards", "notify", "harness"]),
    ("notify", &["api", "app", "actors", "providers", "guards", "harness"]),
    ("providers", &["api", "app", "actors", "guards", "notify", "harness"]),
    ("guards", &["api", "app", "actors", "notify", "harness"]),
    ("actors", &["api", "app", "harness"]),
    ("app", &["api", "harness"]),
];

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = vec![];
    for entry in std::fs::read_dir(path).expect("a source folder").flatten() {
        files.extend(sources(&entry.path()));
    }
    files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "rs")).collect()
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut crossings = vec![];
    for (layer, forbidden) in FORBIDDEN {
        for file in sources(&src.join(layer)) {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for other in *forbidden {
                if text.contains(&format!("crate::{other}::")) || text.contains(&format!("crate::{other};")) {
                    crossings.push(format!("{} names {other}", file.strip_prefix(&src).unwrap().display()));
                }
            }
        }
    }
    assert!(crossings.is_empty(), "layer crossings: {crossings:#?}");
}
