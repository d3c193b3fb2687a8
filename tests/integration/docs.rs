//! The project's Markdown documents hold together: every link from one to another (or to a
//! file of the repository) reaches a file that exists and, when it names a section, a heading
//! of that file, as GitHub renders it; and no document has the same top-level section twice.
//! The README links sections of BENCHMARKS.md by long, dated titles, and a section pasted twice
//! reads as two versions of the truth.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::util;

/// Every Markdown file of the repository, outside `target/` and hidden directories.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                if !name.starts_with('.') && name != "target" {
                    walk(&path, found);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(util::repo(), &mut found);
    found.sort();
    found
}

/// The document's lines outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => lines.push((index + 1, line)),
        }
    }
    lines
}

/// A heading's level and text, if the line is an ATX heading.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then(|| (level, rest.trim()))
}

/// The anchor GitHub gives a heading: the text of its links kept, lower-cased, every character
/// but letters, digits, spaces, `-` and `_` dropped, spaces made hyphens.
fn anchor_of(title: &str) -> String {
    static LINK: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap());
    let title = LINK.replace_all(title, "$1");
    title
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a document's headings; a repeated one gets `-1`, `-2`… as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        if let Some((_, title)) = heading(line) {
            let anchor = anchor_of(title);
            let count = seen.entry(anchor.clone()).or_default();
            anchors.insert(if *count == 0 {
                anchor
            } else {
                format!("{anchor}-{count}")
            });
            *count += 1;
        }
    }
    anchors
}

/// A line with its inline code spans taken out: a link shown as code is not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    for (index, part) in line.split('`').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// The broken links of `documents`, as `file:line: link: why`, the file shown from `base`.
fn broken_links(documents: &[PathBuf], base: &Path) -> Vec<String> {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let scheme = regex::Regex::new(r"^[a-zA-Z][a-zA-Z0-9+.-]*:").unwrap();
    let mut broken = Vec::new();
    let mut known: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for document in documents {
        let text = std::fs::read_to_string(document).unwrap();
        let shown = document.strip_prefix(base).unwrap().display().to_string();
        for (number, line) in prose_lines(&text) {
            for found in link.captures_iter(&without_code_spans(line)) {
                let target = &found[1];
                if scheme.is_match(target) {
                    continue;
                }
                let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
                let file = if path.is_empty() {
                    document.clone()
                } else {
                    document.parent().unwrap().join(path)
                };
                if !file.exists() {
                    broken.push(format!("{shown}:{number}: {target}: no such file"));
                    continue;
                }
                if fragment.is_empty() || file.extension().is_none_or(|ext| ext != "md") {
                    continue;
                }
                let headings = known
                    .entry(file.clone())
                    .or_insert_with(|| anchors(&std::fs::read_to_string(&file).unwrap()));
                if !headings.contains(fragment) {
                    broken.push(format!("{shown}:{number}: {target}: no such heading"));
                }
            }
        }
    }
    broken
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        anchor_of("The image's allocator: jemalloc (2026-12-04, the eighth session)"),
        "the-images-allocator-jemalloc-2026-12-04-the-eighth-session"
    );
    assert_eq!(
        anchor_of("Idle connections: parked HTTP/1.1"),
        "idle-connections-parked-http11"
    );
    assert_eq!(
        anchor_of("`lease_renewal_threshold` and [the seed](etc/agent.hcl) — ≥ 2×"),
        "lease_renewal_threshold-and-the-seed---2"
    );
    let text = "# A\n## A\n```\n## B\n```\n## A\n";
    assert_eq!(
        anchors(text),
        ["a", "a-1", "a-2"].map(String::from).into_iter().collect()
    );
}

#[test]
fn the_checker_finds_every_kind_of_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.md");
    std::fs::write(
        &other,
        "# Other\n## Its section\n```\n## Not a heading\n```\n",
    )
    .unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        "# Doc\n\nSee [it](other.md#its-section), [here](#doc), [web](https://example.com/x#y).\n\
         Not links: `[code](nothing.md)`.\n\
         ```\n[fenced](nothing.md)\n```\n\
         Broken: [gone](other.md#gone), [none](nothing.md), [self](#nowhere), \
         [fence](other.md#not-a-heading).\n",
    )
    .unwrap();
    assert_eq!(
        broken_links(&[doc, other], dir.path()),
        [
            "doc.md:8: other.md#gone: no such heading",
            "doc.md:8: nothing.md: no such file",
            "doc.md:8: #nowhere: no such heading",
            "doc.md:8: other.md#not-a-heading: no such heading",
        ]
    );
}

#[test]
fn every_link_between_the_documents_reaches_a_file_and_a_heading() {
    let documents = documents();
    assert!(
        documents.iter().any(|d| d.ends_with("README.md"))
            && documents.iter().any(|d| d.ends_with("BENCHMARKS.md")),
        "{documents:?}"
    );
    let broken = broken_links(&documents, util::repo());
    assert!(
        broken.is_empty(),
        "broken links:\n{}\nMend the link, or the heading or path it names. A heading's anchor \
         is its text lower-cased, with spaces as hyphens and punctuation dropped \
         (\"Idle connections: parked HTTP/1.1\" is #idle-connections-parked-http11).",
        broken.join("\n")
    );
}

#[test]
fn no_document_has_the_same_section_twice() {
    let repo = util::repo();
    let mut repeated = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (number, line) in prose_lines(&text) {
            // Level 1 and 2: the sections. Subsections such as "Method" or "Results" recur
            // under different sections by design.
            if let Some((level @ 1..=2, title)) = heading(line)
                && let Some(first) = seen.insert(title, number)
            {
                repeated.push(format!(
                    "{}:{number}: {} {title} (first at line {first})",
                    document.strip_prefix(repo).unwrap().display(),
                    "#".repeat(level)
                ));
            }
        }
    }
    assert!(
        repeated.is_empty(),
        "sections repeated:\n{}\nKeep one of each: merge the copies, or rename one if they are \
         different sections.",
        repeated.join("\n")
    );
}
