//! Embeds the demo prompts (`config/prompts/**/*.wav`) in the binary, so the embedded demo
//! configuration greets callers wherever navbat is started (a prompts directory on disk
//! still comes first: a deployment's own recordings replace the embedded ones).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn wavs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            wavs(&path, found);
        } else if path.extension().is_some_and(|e| e == "wav") {
            found.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let prompts = root.join("config/prompts");
    println!("cargo:rerun-if-changed=config/prompts");
    let mut found = Vec::new();
    wavs(&prompts, &mut found);
    found.sort();
    let mut out = String::from(
        "/// The demo prompts, by path under `config/prompts` (`/`-separated).\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for path in &found {
        let rel = path
            .strip_prefix(&prompts)
            .expect("found under the prompts dir")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("embedded_prompts.rs");
    std::fs::write(dest, out).expect("write embedded_prompts.rs");
}
