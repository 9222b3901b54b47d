//! The layers of src/ point one way: no two files import each other, directly or round a circle,
//! and no top-level part (engine, tui, llm, project, …) imports one that imports it back. Read
//! from the source itself: every `use` and every `crate::` / `super::` path in code (comments,
//! strings and `#[cfg(test)]` modules left out), resolved to the file of the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// A module path (`["engine", "run", "open"]`) and the file that holds it.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(SRC), &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(SRC).unwrap();
        let mut parts: Vec<String> =
            rel.iter().map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
            parts.pop();
        }
        if parts == ["main"] {
            parts = vec!["<main>".into()];
        }
        out.insert(parts, f);
    }
    out
}

/// The code of a file without comments, string and char literals, and `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map(|j| j + 2).unwrap_or(rest.len());
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = 2 + hashes;
            i += rest[start..].find(&close).map(|j| start + j + close.len()).unwrap_or(rest.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(rest) {
            // A char literal ('x', '\n', '…'); a lifetime ('a) is left alone.
            let body = &rest[1..];
            let skip = if body.starts_with('\\') { 2 } else { body.chars().next().map_or(1, char::len_utf8) };
            i += 1 + skip + body[skip..].find('\'').map_or(0, |j| j + 1);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    // `#[cfg(test)]` and the item after it (a test module: its imports are not the file's).
    while let Some(at) = out.find("#[cfg(test)]") {
        let after = &out[at..];
        let Some(open) = after.find(['{', ';']) else { break };
        let end = if after.as_bytes()[open] == b';' {
            open + 1
        } else {
            let mut depth = 0;
            let mut end = after.len();
            for (k, ch) in after[open..].char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        };
        out.replace_range(at..at + end, "");
    }
    out
}

fn is_char_literal(rest: &str) -> bool {
    let mut c = rest.chars().skip(1);
    match c.next() {
        Some('\\') => true,
        Some(_) => c.next() == Some('\''),
        None => false,
    }
}

/// Every path the code names: `use` trees expanded (`a::{b, c::d}` -> `a::b`, `a::c::d`) and
/// inline `crate::…` / `super::…` / `self::…` paths.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        // Split the top level of a `{…}` group on commas.
        if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let (mut depth, mut start) = (0, 0);
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(prefix, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(prefix, &inner[start..], out);
            return;
        }
        match tree.split_once("::") {
            Some((head, rest)) => {
                let mut p = prefix.to_vec();
                p.push(head.trim().to_string());
                expand(&p, rest, out);
            }
            None if tree.is_empty() => {}
            None => {
                let mut p = prefix.to_vec();
                let name = tree.split(" as ").next().unwrap().trim();
                if name != "*" && name != "self" {
                    p.push(name.to_string());
                }
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    let words: Vec<(usize, &str)> = code.match_indices("use ").collect();
    for (at, _) in words {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = code[at..].find(';') else { continue };
        let tree: String = code[at + 4..at + end].split_whitespace().collect::<Vec<_>>().join(" ");
        expand(&[], &tree.replace(" ::", "::").replace(":: ", "::"), &mut out);
    }
    for root in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(root) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
        }
    }
    out
}

/// The file-level import graph: module -> modules it names (never itself).
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules();
    let mut g = BTreeMap::new();
    for (m, file) in &mods {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let is_dir_module = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        let mut deps = BTreeSet::new();
        for path in paths_in(&code) {
            let Some(first) = path.first() else { continue };
            // Resolve to an absolute module path.
            let mut abs: Vec<String> = match first.as_str() {
                "crate" => vec![],
                "self" => m.clone(),
                "super" => {
                    let mut base = m.clone();
                    let mut k = 0;
                    while path.get(k).is_some_and(|s| s == "super") {
                        base.pop();
                        k += 1;
                    }
                    base.extend(path[k..].iter().cloned());
                    base
                }
                // A child module named without `self::` (`pub use open::load_events`).
                child if is_dir_module && mods.contains_key(&[m.clone(), vec![child.to_string()]].concat()) => {
                    let mut base = m.clone();
                    base.extend(path.iter().cloned());
                    base
                }
                _ => continue,
            };
            if first == "crate" || first == "self" {
                abs.extend(path[1..].iter().cloned());
            }
            // The longest prefix that is a module file.
            while !abs.is_empty() && !mods.contains_key(&abs) {
                abs.pop();
            }
            if !abs.is_empty() && &abs != m {
                deps.insert(abs);
            }
        }
        g.insert(m.clone(), deps);
    }
    g
}

/// The circles of a graph: its strongly connected components with more than one node (Tarjan).
fn circles<N: Ord + Clone>(g: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct T<'a, N: Ord + Clone> {
        g: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on: BTreeSet<N>,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(t: &mut T<N>, v: &N) {
        let i = t.index.len();
        t.index.insert(v.clone(), i);
        t.low.insert(v.clone(), i);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t.g.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                comp.push(w.clone());
                if &w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T { g, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], on: BTreeSet::new(), out: vec![] };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// A parent module and the files under it may name each other (a folder's mod.rs re-exports
/// what its files define; they read the parent's shared items): that is one part, not a circle.
fn within_one_folder(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

#[test]
fn no_two_files_import_each_other_directly_or_round_a_circle() {
    let g = graph();
    let pruned: BTreeMap<_, BTreeSet<_>> = g
        .iter()
        .map(|(m, deps)| (m.clone(), deps.iter().filter(|d| !within_one_folder(m, d)).cloned().collect()))
        .collect();
    let found: Vec<String> = circles(&pruned)
        .into_iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    pruned[a].iter().filter(|b| c.contains(b)).map(move |b| format!("{} -> {}", show(a), show(b)))
                })
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(found.is_empty(), "import circles among src/ files:\n{}", found.join("\n"));
}

#[test]
fn the_top_level_parts_point_one_way() {
    let mut parts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, deps) in graph() {
        let Some(top) = m.first() else { continue };
        let entry = parts.entry(top.clone()).or_default();
        for d in deps {
            if let Some(dt) = d.first().filter(|dt| *dt != top) {
                entry.insert(dt.clone());
            }
        }
    }
    let found = circles(&parts);
    let why: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .flat_map(|a| parts[a].iter().filter(|b| c.contains(b)).map(move |b| format!("{a} -> {b}")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    assert!(why.is_empty(), "parts of src/ that import each other (one must not):\n{}", why.join("\n"));
}

#[test]
fn the_reader_sees_imports_of_every_form() {
    let code = code_of(
        "use crate::a::{b::C, d};\nuse super::{e, f::g as h};\n// use crate::x::y;\nfn f() { let s = \"crate::z\"; crate::k::l(); }\n\
         #[cfg(test)]\nmod tests { use crate::t::u; }\n",
    );
    let paths: BTreeSet<String> = paths_in(&code).into_iter().map(|p| p.join("::")).collect();
    for want in ["crate::a::b::C", "crate::a::d", "super::e", "super::f::g", "crate::k::l"] {
        assert!(paths.contains(want), "{want} in {paths:?}");
    }
    for not in ["crate::x::y", "crate::z", "crate::t::u"] {
        assert!(!paths.iter().any(|p| p.starts_with(not)), "{not} in {paths:?}");
    }
    let g: BTreeMap<u8, BTreeSet<u8>> =
        [(1, [2].into()), (2, [3].into()), (3, [1].into()), (4, [1].into())].into_iter().collect();
    assert_eq!(circles(&g), vec![vec![1, 2, 3]]);
}

/// No file of src/ passes 900 lines: a file that grows past it is split along its seams.
#[test]
fn no_src_file_is_over_900_lines() {
    let long: Vec<String> = modules()
        .values()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 900).then(|| format!("{} ({n} lines)", f.strip_prefix(SRC).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "src/ files over 900 lines:\n{}", long.join("\n"));
}
