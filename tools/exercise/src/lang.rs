//! The language `cargo exercise` speaks to a learner: English, or Simplified
//! Chinese with `--lang zh-CN` or a `LC_ALL`, `LC_MESSAGES` or `LANG` that
//! starts with `zh` (the first of them that is set, as gettext reads them).
//!
//! The Chinese words come from the book's translation, `docs/po/zh-CN.po`:
//! the exercises' titles, behaviours, sections and test sentences are in
//! the book already, and `.ci/i18n` adds the hints and this tool's own
//! sentences (every `lang::tr("...")` and `lang::say("...", ...)` in its
//! source) to the messages it extracts. So CI fails when any of them lacks
//! its translation, as it does for the book. What has no translation is
//! said in English.
//!
//! Test failure messages stay English: they come from the lessons' tests,
//! and each names its section of the book, which the Chinese book has too.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::OnceLock;

/// Where the translation lives, from the workspace's root.
pub const CATALOGUE: &str = "docs/po/zh-CN.po";

/// The Chinese words, once read: English text -> its translation.
static CHINESE: OnceLock<HashMap<String, String>> = OnceLock::new();

/// Whether the tool speaks Chinese (else it only knows the words, to
/// recognise an exercise blanked in Chinese).
static SPEAKING: OnceLock<bool> = OnceLock::new();

/// Which language the learner asked for: `--lang`, else the environment.
pub fn wants_chinese(flag: Option<&str>) -> bool {
    let asked = match flag {
        Some(flag) => flag.to_string(),
        None => ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default(),
    };
    asked.to_ascii_lowercase().starts_with("zh")
}

/// Reads the translation under `root`, and speaks Chinese from now on if
/// `speak`. Returns why not, in one line, when the translation cannot be
/// read: the tool then speaks English.
pub fn load(root: &Path, speak: bool) -> Result<(), String> {
    let path = root.join(CATALOGUE);
    let words = read(&path).map_err(|err| format!("could not read {}: {err}", path.display()))?;
    let _ = CHINESE.set(words);
    let _ = SPEAKING.set(speak);
    Ok(())
}

/// The translated, non-fuzzy messages of the PO file at `path`.
pub fn read(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| err.to_string())?;
    // A checkout on Windows may have turned the file's line ends to \r\n.
    Ok(messages(&text.replace("\r\n", "\n")))
}

/// The translated, non-fuzzy messages of a PO file's text. What this tool
/// needs of the format (gettext's manual, "The Format of PO Files"): an
/// entry is its comments (`#, fuzzy` marks a draft, `#~` an obsolete
/// entry), then `msgid` and `msgstr`, each a quoted string that may go on
/// in quoted lines after it; entries are apart by a blank line. Anything
/// else (a context, plural forms) is not a message the tool says.
fn messages(text: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for entry in text.split("\n\n") {
        let fuzzy = entry
            .lines()
            .any(|line| line.starts_with("#,") && line.contains("fuzzy"));
        let (mut msgid, mut msgstr, mut other) = (None::<String>, None::<String>, false);
        let mut current: Option<&mut String> = None;
        for line in entry.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("msgid ") {
                msgid = Some(unquote(rest));
                msgstr = None;
                current = msgid.as_mut();
            } else if let Some(rest) = line.strip_prefix("msgstr ") {
                msgstr = Some(unquote(rest));
                current = msgstr.as_mut();
            } else if line.starts_with('"') {
                if let Some(text) = current.as_deref_mut() {
                    text.push_str(&unquote(line));
                }
            } else if line.starts_with("msg") {
                other = true; // msgctxt, msgid_plural, msgstr[N]
                current = None;
            } else {
                current = None;
            }
        }
        if let (Some(msgid), Some(msgstr)) = (msgid, msgstr)
            && !fuzzy
            && !other
            && !msgid.is_empty()
            && !msgstr.is_empty()
        {
            found.insert(msgid, msgstr);
        }
    }
    found
}

/// A PO file's quoted string, its escapes undone.
fn unquote(quoted: &str) -> String {
    let inner = quoted
        .trim()
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or("");
    let mut text = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('t') => text.push('\t'),
            Some('r') => text.push('\r'),
            Some(other) => text.push(other),
            None => {}
        }
    }
    text
}

/// Whether the tool speaks Chinese.
pub fn chinese() -> bool {
    SPEAKING.get() == Some(&true)
}

/// The Chinese of `text`, whichever language the tool speaks.
pub fn chinese_of(text: &str) -> Option<&str> {
    CHINESE.get()?.get(text).map(String::as_str)
}

/// `text` in the learner's language: one of this tool's sentences, or an
/// exercise's title, behaviour, hint, section or test sentence.
pub fn tr(text: &str) -> &str {
    match chinese_of(text) {
        Some(chinese) if self::chinese() => chinese,
        _ => text,
    }
}

/// A sentence with `{name}` slots, translated, then filled in: the slots
/// let the Chinese put the words in its own order.
/// The slots are filled in one pass, so a value that holds braces (a title
/// that says `{id}`) is kept as it is, never filled in again.
pub fn say(template: &str, slots: &[(&str, &dyn Display)]) -> String {
    let mut sentence = String::new();
    let mut rest = tr(template);
    while let Some(open) = rest.find('{') {
        sentence.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let slot = after.find('}').and_then(|close| {
            let name = &after[..close];
            let (_, value) = slots.iter().find(|(slot, _)| *slot == name)?;
            Some((value, close))
        });
        match slot {
            Some((value, close)) => {
                sentence.push_str(&value.to_string());
                rest = &after[close + 1..];
            }
            None => {
                sentence.push('{');
                rest = after;
            }
        }
    }
    sentence.push_str(rest);
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_only_zh_means_chinese() {
        assert!(wants_chinese(Some("zh-CN")));
        assert!(wants_chinese(Some("zh_CN.UTF-8")));
        assert!(!wants_chinese(Some("en")));
        assert!(!wants_chinese(Some("")));
    }

    #[test]
    fn a_po_file_gives_its_translated_messages_and_skips_drafts() {
        let po = "msgid \"\"\nmsgstr \"\"\n\"Language: zh_CN\\n\"\n\n\
                  #: a.md:1\nmsgid \"\"\n\"one \\\"line\\\"\\n\"\n\"two\"\nmsgstr \"\u{4e00}\\n\u{4e8c}\"\n\n\
                  #, fuzzy\nmsgid \"draft\"\nmsgstr \"\u{8349}\"\n\n\
                  msgid \"none\"\nmsgstr \"\"\n\n\
                  #~ msgid \"old\"\n#~ msgstr \"\u{65e7}\"\n";
        let found = messages(po);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found["one \"line\"\ntwo"], "\u{4e00}\n\u{4e8c}");
    }

    #[test]
    fn a_value_with_braces_is_kept_as_it_is() {
        // The behaviour is filled in first here: filled in slot by slot, its
        // `{id}` would then be taken for the sentence's own.
        let slots: [(&str, &dyn Display); 2] = [("behaviour", &"say {id} {x}"), ("id", &"2.1")];
        assert_eq!(
            say("exercise {id}: {behaviour} ({id})", &slots),
            "exercise 2.1: say {id} {x} (2.1)"
        );
        assert_eq!(say("no {slot} here {", &[]), "no {slot} here {");
    }

    #[test]
    fn a_po_file_with_windows_line_ends_reads_the_same() {
        let dir = testkit::TempDir::new();
        let path = dir.join("zh-CN.po");
        let po = "msgid \"\"\nmsgstr \"\"\n\nmsgid \"one\"\nmsgstr \"\u{4e00}\"\n\nmsgid \"two\"\nmsgstr \"\u{4e8c}\"\n";
        std::fs::write(&path, po.replace('\n', "\r\n")).unwrap();
        let found = read(&path).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found["two"], "\u{4e8c}");
    }

    #[test]
    fn slots_are_filled_after_the_translation() {
        assert_eq!(
            say("{a} of {b} hold", &[("a", &3), ("b", &5)]),
            "3 of 5 hold"
        );
    }
}
