//! No input makes parsing or resolving panic: random bytes and mutated intents.

use intent::Catalog;
use proptest::prelude::*;

const SEED: &str = include_str!("data/intent.yaml");

/// Snippets that push the parser into interesting corners.
const SNIPPETS: [&str; 16] = [
    "\n",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "&a ",
    "*a",
    "!!str ",
    "\t",
    "1e999",
    "\n        fracfit: \"2\"\n",
    "\n        cohort: {hosts: [a, a]}\n",
];

fn parse_and_resolve(file: &str, bytes: &[u8]) {
    if let Ok(intent) = intent::parse(file, bytes) {
        let _ = Catalog::builtin().resolve(&intent).map(|r| {
            r.targets.iter().for_each(|t| {
                t.to_aggregate_intent("x");
            })
        });
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 0..SNIPPETS.len()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_and_resolve("random.yaml", &bytes);
        parse_and_resolve("random.json", &bytes);
    }

    #[test]
    fn mutated_intents_never_panic(edits in proptest::collection::vec(edit(), 1..8)) {
        let mut bytes = SEED.as_bytes().to_vec();
        for e in edits {
            let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
            match e {
                Edit::Flip(i, b) if !bytes.is_empty() => {
                    let n = bytes.len();
                    bytes[i % n] = b;
                }
                Edit::Flip(..) => {}
                Edit::Insert(i, s) => {
                    let i = at(i, bytes.len());
                    bytes.splice(i..i, SNIPPETS[s].bytes());
                }
                Edit::Delete(i, n) => {
                    let i = at(i, bytes.len());
                    let end = (i + n).min(bytes.len());
                    bytes.drain(i..end);
                }
            }
        }
        parse_and_resolve("mutated.yaml", &bytes);
        parse_and_resolve("mutated", &bytes);
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_errors() {
    let deep = "[".repeat(100_000);
    assert!(intent::parse("deep.yaml", deep.as_bytes()).is_err());
    assert!(intent::parse("deep.json", deep.as_bytes()).is_err());
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = (b'a' + i - 1) as char;
        let name = (b'a' + i) as char;
        bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    assert!(intent::parse("bomb.yaml", bomb.as_bytes()).is_err());
}
