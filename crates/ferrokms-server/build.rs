//! Embeds the web console's built files (`console/dist`, committed; the README's "The web
//! console" says how they are built) as a table of `(path, bytes)`, so that the binary serves them with
//! nothing beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        // Only what Vite wrote: no hidden files, nothing a link points to elsewhere.
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        let link = std::fs::symlink_metadata(&path).map_or(true, |m| m.file_type().is_symlink());
        if hidden || link {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../../console/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let dist = dist
        .canonicalize()
        .unwrap_or_else(|e| panic!("console/dist ({}): {e}", dist.display()));
    let mut found = Vec::new();
    files(&dist, &mut found);
    let mut table = String::from("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for path in &found {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .strip_prefix(&dist)
            .expect("under dist")
            .to_str()
            .expect("console file names are UTF-8")
            .replace('\\', "/");
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("console_files.rs"), table).expect("writing console_files.rs");
}
