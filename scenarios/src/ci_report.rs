//! Reports CI systems read: JUnit XML (one test case per failing seed and one per invariant
//! family, the reproduce line as the failure message) and GitHub Actions annotations.

use std::collections::BTreeMap;

use heldlock_sim::InvariantId;

use crate::campaign::{Failure, Summary};

/// Text made safe for an XML attribute or element: markup escaped, and the control
/// characters XML 1.0 forbids replaced.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn testcase(out: &mut String, class: &str, name: &str, failure: Option<(&str, &str)>) {
    out.push_str(&format!(
        "    <testcase classname=\"{}\" name=\"{}\"",
        xml_escape(class),
        xml_escape(name)
    ));
    match failure {
        None => out.push_str("/>\n"),
        Some((message, body)) => out.push_str(&format!(
            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
            xml_escape(message),
            xml_escape(body)
        )),
    }
}

/// The JUnit XML of a campaign: per failing seed a failed test case; per invariant family
/// (I1 … I16, and `assert` when the simulation panicked) a case that fails when any seed
/// broke it, naming the first seed's reproduce line.
pub fn junit_xml(summary: &Summary) -> String {
    let mut by_invariant: BTreeMap<InvariantId, Vec<&Failure>> = BTreeMap::new();
    for f in &summary.failures {
        by_invariant.entry(f.invariant).or_default().push(f);
    }
    let families = InvariantId::CHECKED.into_iter().chain([InvariantId::Assert]);
    let families: Vec<(InvariantId, &str)> = families.map(|id| (id, id.description())).collect();
    let tests = summary.failures.len() + families.len();
    let failed = summary.failures.len() + by_invariant.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"heldlock\" tests=\"{tests}\" failures=\"{failed}\">\n  \
         <testsuite name=\"heldlock campaign\" tests=\"{tests}\" failures=\"{failed}\" time=\"{:.3}\">\n",
        summary.wall_seconds
    ));
    for (id, text) in &families {
        let name = format!("{id} {text}");
        let failure = by_invariant.get(id).map(|fs| {
            let first = fs[0];
            (
                first.reproduce.clone(),
                format!("{} seed(s) broke {id}; first: {}", fs.len(), first.violation),
            )
        });
        testcase(
            &mut out,
            "heldlock.invariants",
            &name,
            failure.as_ref().map(|(m, b)| (m.as_str(), b.as_str())),
        );
    }
    for f in &summary.failures {
        let class = format!("heldlock.{}", f.scenario);
        let name = match &f.mutant {
            Some(m) => format!("seed {} mutant {m}", f.seed),
            None => format!("seed {}", f.seed),
        };
        testcase(&mut out, &class, &name, Some((&f.reproduce, &f.violation)));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Whether GitHub Actions runs us (it sets `GITHUB_ACTIONS=true`).
pub fn under_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// A workflow command's data, escaped as GitHub's toolkit does.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::error title=…::…` for one failure: shown on the run's page.
pub fn github_annotation(f: &Failure) -> String {
    let title = format!("heldlock {} broke {} (seed {})", f.scenario, f.invariant, f.seed);
    format!(
        "::error title={}::{}",
        escape_property(&title),
        escape_data(&format!("{}\nreproduce: {}", f.violation, f.reproduce))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_github_would_misread() {
        let f = Failure {
            scenario: "swarm".into(),
            seed: 7,
            mutant: None,
            invariant: InvariantId::I3,
            violation: "I3 at 1s: 100% leaked,\nnext".into(),
            reproduce: "heldlock replay --scenario swarm --seed 7".into(),
        };
        let line = github_annotation(&f);
        assert!(line
            .starts_with("::error title=heldlock swarm broke I3 (seed 7)::I3 at 1s: 100%25 leaked,%0Anext"));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn junit_escapes_markup() {
        let summary = Summary {
            failures: vec![Failure {
                scenario: "swarm".into(),
                seed: 1,
                mutant: Some("m3".into()),
                invariant: InvariantId::I3,
                violation: "a <b> & \"c\" \u{1}".into(),
                reproduce: "heldlock replay --seed 1".into(),
            }],
            ..Summary::default()
        };
        let xml = junit_xml(&summary);
        assert!(xml.contains("a &lt;b&gt; &amp; &quot;c&quot; \u{fffd}"), "{xml}");
        assert!(xml.contains("tests=\"18\" failures=\"2\""), "{xml}");
    }
}
