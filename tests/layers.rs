//! The import layers of `src/` (issue 17, part 5): no import cycle between top-level modules,
//! and none of the arrows `../shared/design.md` says must never exist.
//!
//! The test reads every `.rs` file under `src/`, strips comments and literals, and collects
//! which top-level module uses which: `use crate::x` (with nested groups), `crate::x::` paths in
//! code, `super::` resolved against the file's (and its inline modules') place in the tree, and
//! names that a module's root re-exports from another module (`pub use crate::x::Y`, so a user of
//! `crate::m::Y` depends on `x` too). It then computes the strongly connected components of that
//! graph. Run it with `--nocapture` to print the graph's edges.
//!
//! Plain Rust on purpose: a parser crate would be a heavy dependency for a few hundred lines of
//! path scanning, and the scanner's own cases are tested below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// Pure cores: decisions only, so they may not reach anything that does I/O.
const PURE_CORES: &[&str] = &["acd", "ivr", "sla", "callback"];

/// Modules that do I/O (sockets, files, databases, actors, the clock), which pure cores must
/// not import.
const WITH_IO: &[&str] = &[
    "accounts", "actors", "desk", "http", "mail", "media", "metrics", "notices", "presence",
    "report", "requests", "sip", "sms", "store", "tls",
];

/// Arrows that must never exist besides "pure core -> I/O": (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "sip",
        "acd",
        "SIP is the wire; routing decisions are reached through the actors",
    ),
    (
        "sip",
        "actors",
        "SIP is the wire; the actors drive it, not the other way round",
    ),
    (
        "metrics",
        "actors",
        "metrics is a sink and a catalogue; the poller lives in the actors",
    ),
    (
        "config",
        "sip",
        "configuration is parsed into its own types, not SIP's",
    ),
    ("config", "sms", "SmsSettings lives in config"),
    (
        "config",
        "actors",
        "configuration is read by the actors, never the reverse",
    ),
    ("presence", "sip", "presence keeps its own binding type"),
];

/// One place a module uses another.
#[derive(Clone, Debug)]
struct Use {
    file: PathBuf,
    line: usize,
    /// The path as written (for the failure message).
    path: String,
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({})", self.file.display(), self.line, self.path)
    }
}

/// Edges between top-level modules: (from, to) -> every place it happens.
type Graph = BTreeMap<(String, String), Vec<Use>>;

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = graph_of_src();
    print_graph(&graph);
    let cycles: Vec<Vec<String>> = strongly_connected(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    if cycles.is_empty() {
        return;
    }
    let mut said = String::new();
    for cycle in &cycles {
        said += &format!("import cycle between {}:\n", cycle.join(", "));
        let members: BTreeSet<&String> = cycle.iter().collect();
        for ((from, to), uses) in &graph {
            if members.contains(from) && members.contains(to) {
                said += &format!("  {from} -> {to}: {}\n", uses[0]);
            }
        }
    }
    panic!("{said}break each cycle by moving the type or function to the module lower down");
}

#[test]
fn no_forbidden_arrow() {
    let graph = graph_of_src();
    let mut said = String::new();
    for ((from, to), uses) in &graph {
        let why = if PURE_CORES.contains(&from.as_str()) && WITH_IO.contains(&to.as_str()) {
            Some("a pure core must not reach a module with I/O")
        } else {
            FORBIDDEN
                .iter()
                .find(|(f, t, _)| f == from && t == to)
                .map(|(_, _, why)| *why)
        };
        if let Some(why) = why {
            for u in uses {
                said += &format!("forbidden arrow {from} -> {to} ({why}): {u}\n");
            }
        }
    }
    assert!(said.is_empty(), "{said}");
}

/// The graph of the crate's own `src/`.
fn graph_of_src() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            (f.strip_prefix(&src).unwrap().to_path_buf(), text)
        })
        .collect();
    graph_of(&sources)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn print_graph(graph: &Graph) {
    println!(
        "module graph of src/ ({} edges; from -> to: uses):",
        graph.len()
    );
    for ((from, to), uses) in graph {
        println!("  {from} -> {to}: {}", uses.len());
        // LAYERS_VERBOSE=1 lists every place, for whoever untangles an edge.
        if std::env::var_os("LAYERS_VERBOSE").is_some() {
            for u in uses {
                println!("      {u}");
            }
        }
    }
}

/// The module path of a file relative to `src/`: `actors/call.rs` -> [actors, call],
/// `sip/mod.rs` -> [sip]; `None` for the crate roots (`lib.rs`, `main.rs`).
fn module_path(file: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        return None;
    }
    Some(parts)
}

/// Builds the graph from (path relative to `src/`, text) pairs.
fn graph_of(sources: &[(PathBuf, String)]) -> Graph {
    let tops: BTreeSet<String> = sources
        .iter()
        .filter_map(|(f, _)| module_path(f).map(|p| p[0].clone()))
        .collect();
    let scanned: Vec<(PathBuf, Vec<String>, Vec<Found>)> = sources
        .iter()
        .filter_map(|(f, text)| {
            let module = module_path(f)?;
            let found = scan(text, &module);
            Some((f.clone(), module, found))
        })
        .collect();
    // Names a top-level module's root re-exports from another top-level module.
    let mut reexports: HashMap<(String, String), String> = HashMap::new();
    for (_, module, found) in &scanned {
        if module.len() != 1 {
            continue;
        }
        for f in found
            .iter()
            .filter(|f| f.reexport_as.is_some() && f.at_root)
        {
            let to = &f.absolute[0];
            if to != &module[0] && tops.contains(to) {
                let name = f.reexport_as.clone().unwrap();
                reexports.insert((module[0].clone(), name), to.clone());
            }
        }
    }
    let mut graph = Graph::new();
    for (file, module, found) in &scanned {
        let from = &module[0];
        for f in found {
            let Some(to) = f.absolute.first().filter(|t| tops.contains(*t)) else {
                continue;
            };
            let place = Use {
                file: Path::new("src").join(file),
                line: f.line,
                path: f.written.clone(),
            };
            let mut targets = vec![to.clone()];
            if let Some(second) = f.absolute.get(1) {
                if let Some(via) = reexports.get(&(to.clone(), second.clone())) {
                    targets.push(via.clone());
                }
            }
            for to in targets {
                if &to != from {
                    graph
                        .entry((from.clone(), to))
                        .or_default()
                        .push(place.clone());
                }
            }
        }
    }
    graph
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &Graph) -> Vec<Vec<String>> {
    let mut nodes: BTreeSet<&String> = BTreeSet::new();
    let mut next: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        nodes.insert(from);
        nodes.insert(to);
        next.entry(from).or_default().push(to);
    }
    struct State<'a> {
        index: HashMap<&'a String, usize>,
        low: HashMap<&'a String, usize>,
        stack: Vec<&'a String>,
        on_stack: BTreeSet<&'a String>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a String, next: &BTreeMap<&'a String, Vec<&'a String>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in next.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, next, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(v, &next, &mut s);
        }
    }
    s.out
}

/// One path found in a file, resolved to an absolute module path (`crate::` dropped).
#[derive(Debug, Clone, PartialEq)]
struct Found {
    line: usize,
    absolute: Vec<String>,
    written: String,
    /// For a `pub use` leaf: the name it is exported under.
    reexport_as: Option<String>,
    /// Whether it sits at the file's top level (not in an inline module).
    at_root: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Blanks comments and string/char literals (keeping newlines, so lines still count), then
/// splits the rest into tokens with their line numbers.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let skip_to = |from: usize, to: usize, line: &mut usize| {
        *line += c[from..to.min(c.len())]
            .iter()
            .filter(|&&x| x == '\n')
            .count();
        to
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < c.len() {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = skip_to(i, j, &mut line);
        } else if ch == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&c, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = skip_to(i, j, &mut line);
        } else if ch == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            i = skip_to(i, j + 1, &mut line);
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // `$crate` in a macro is the defining crate: a use like any other.
            out.push((Tok::Ident(word), line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    ';' => Tok::Semi,
                    '*' => Tok::Star,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// Whether `r` at `i` starts a raw string (`r"`, `r#"`), not an identifier ending in r.
fn raw_string_at(c: &[char], i: usize) -> bool {
    let word_char = |k: usize| c[k].is_alphanumeric() || c[k] == '_';
    // `r` must start a token, or follow a lone `b` (`br"..."`).
    let byte_prefix = i > 0 && c[i - 1] == 'b' && (i == 1 || !word_char(i - 2));
    if i > 0 && word_char(i - 1) && !byte_prefix {
        return false;
    }
    let mut j = i + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Finds every `crate::`/`super::` path in a file whose module path is `module`.
fn scan(text: &str, module: &[String]) -> Vec<Found> {
    let toks = tokens(text);
    let mut found = Vec::new();
    // Inline modules: (name, brace depth at which their body opened).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), Some((Tok::Open, _))) =
                    (ident(toks.get(i + 1)), toks.get(i + 2))
                {
                    inline.push((name.to_string(), depth + 1));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(w) if w == "use" => {
                let public = i > 0
                    && (matches!(&toks[i - 1].0, Tok::Ident(p) if p == "pub")
                        || (i > 3 && matches!(&toks[i - 4].0, Tok::Ident(p) if p == "pub")));
                let here = here(module, &inline);
                let mut leaves = Vec::new();
                let end = use_tree(&toks, i + 1, Vec::new(), &mut leaves);
                for (segments, alias, line) in leaves {
                    if let Some(absolute) = resolve(&segments, &here) {
                        found.push(Found {
                            line,
                            written: segments.join("::"),
                            reexport_as: public
                                .then(|| alias.unwrap_or_else(|| segments.last().unwrap().clone())),
                            absolute,
                            at_root: inline.is_empty(),
                        });
                    }
                }
                i = end;
                continue;
            }
            Tok::Ident(w) if (w == "crate" || w == "super") && starts_path(&toks, i) => {
                let line = toks[i].1;
                let mut segments = Vec::new();
                let mut j = i;
                while let Some(s) = ident(toks.get(j)) {
                    segments.push(s.to_string());
                    if toks.get(j + 1).map(|t| &t.0) != Some(&Tok::PathSep) {
                        break;
                    }
                    j += 2;
                }
                if let Some(absolute) = resolve(&segments, &here(module, &inline)) {
                    found.push(Found {
                        line,
                        written: segments.join("::"),
                        reexport_as: None,
                        absolute,
                        at_root: inline.is_empty(),
                    });
                }
                i = j + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// `crate`/`super` followed by `::`, and not itself the tail of a longer path (`a::super`).
fn starts_path(toks: &[(Tok, usize)], i: usize) -> bool {
    toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep)
        && (i == 0 || toks[i - 1].0 != Tok::PathSep)
}

fn here(module: &[String], inline: &[(String, usize)]) -> Vec<String> {
    module
        .iter()
        .cloned()
        .chain(inline.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// Resolves `crate::a::b` or `super::super::a` against the current module path; `None` for
/// paths into other crates or `self::`.
fn resolve(segments: &[String], here: &[String]) -> Option<Vec<String>> {
    match segments.first().map(String::as_str) {
        Some("crate") | Some("$crate") => Some(segments[1..].to_vec()),
        Some("super") => {
            let ups = segments.iter().take_while(|s| *s == "super").count();
            let base = here.get(..here.len().checked_sub(ups)?)?;
            Some(base.iter().chain(&segments[ups..]).cloned().collect())
        }
        Some("self") => Some(here.iter().chain(&segments[1..]).cloned().collect()),
        _ => None,
    }
}

/// Parses a use tree from `i` to its `;`: pushes (segments, alias, line) per leaf and returns
/// the index after the tree.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    leaves: &mut Vec<(Vec<String>, Option<String>, usize)>,
) -> usize {
    let mut path = prefix;
    let mut line = toks.get(i).map_or(0, |t| t.1);
    // The first segment of an item, or one after `::`, extends the path.
    let mut expect_segment = true;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Ident(s) if s == "as" => {
                let alias = ident(toks.get(i + 1)).map(str::to_string);
                leaves.push((std::mem::take(&mut path), alias, line));
                i += 2;
                continue;
            }
            Tok::Ident(s) => {
                if expect_segment {
                    line = toks[i].1;
                    path.push(s.clone());
                    expect_segment = false;
                }
            }
            Tok::PathSep => expect_segment = true,
            Tok::Star => {}
            Tok::Open => {
                // A group: each item extends the current path.
                i += 1;
                loop {
                    i = use_tree(toks, i, path.clone(), leaves);
                    match toks.get(i).map(|t| &t.0) {
                        Some(Tok::Comma) => {
                            i += 1;
                            if toks.get(i).map(|t| &t.0) == Some(&Tok::Close) {
                                i += 1;
                                break;
                            }
                        }
                        Some(Tok::Close) => {
                            i += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                path.clear();
                continue;
            }
            Tok::Comma | Tok::Close | Tok::Semi => {
                if !path.is_empty() {
                    // `self` inside a group names the group's own path.
                    if path.last().is_some_and(|s| s == "self") && path.len() > 1 {
                        path.pop();
                    }
                    leaves.push((path, None, line));
                }
                return if toks[i].0 == Tok::Semi { i + 1 } else { i };
            }
            Tok::Other => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod scanner {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Vec<(String, String)> {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.to_string()))
            .collect();
        graph_of(&sources).into_keys().collect()
    }

    fn edge(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn finds_use_groups_paths_and_super() {
        let got = graph(&[
            (
                "a.rs",
                "use crate::{b::X, c::{self, Y}};\nfn f() { crate::d::g(); }",
            ),
            ("b.rs", "pub struct X;"),
            ("c/mod.rs", "mod inner;\nuse super::e::Z;"),
            ("c/inner.rs", "use super::super::f::W; use super::Y;"),
            ("d.rs", "pub fn g() {}"),
            (
                "e.rs",
                "// use crate::a::nothing;\nconst S: &str = \"crate::a::no\";",
            ),
            ("f.rs", "#[cfg(test)] mod tests { use super::*; }"),
        ]);
        assert_eq!(
            got,
            vec![
                edge("a", "b"),
                edge("a", "c"),
                edge("a", "d"),
                edge("c", "e"),
                edge("c", "f")
            ]
        );
    }

    #[test]
    fn follows_a_reexport_to_its_source() {
        let got = graph(&[
            ("a.rs", "use crate::b::Thing;"),
            ("b/mod.rs", "pub use crate::c::Thing;"),
            ("c.rs", "pub struct Thing;"),
        ]);
        assert_eq!(got, vec![edge("a", "b"), edge("a", "c"), edge("b", "c")]);
    }

    #[test]
    fn names_a_cycle() {
        let sources: Vec<(PathBuf, String)> = [
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "fn f() { crate::c::g(); }"),
            ("c.rs", "use crate::a::Y;"),
            ("d.rs", "use crate::a::Y;"),
        ]
        .iter()
        .map(|(f, t)| (PathBuf::from(f), t.to_string()))
        .collect();
        let components = strongly_connected(&graph_of(&sources));
        let big: Vec<_> = components.into_iter().filter(|c| c.len() > 1).collect();
        assert_eq!(big, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    }

    #[test]
    fn lifetimes_and_raw_strings_do_not_hide_code() {
        let got = graph(&[
            (
                "a.rs",
                "fn f<'x>(s: &'x str) -> char { let _ = r#\"crate::c::no\"#; 'q' }\nuse crate::b::Y;",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
        ]);
        assert_eq!(got, vec![edge("a", "b")]);
    }
}
