//! docs/expressions.md carries a function reference generated from `functions()`.
//! Regenerate it with `UPDATE_EXPR_DOCS=1 cargo test --release -p orch-expr docs`.

use crate::functions;

const START: &str =
    "<!-- functions:start (generated from orch_expr::functions(); do not edit by hand) -->";
const END: &str = "<!-- functions:end -->";

fn docs_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/expressions.md")
}

fn reference() -> String {
    let mut out = String::new();
    out.push_str("| function | returns |\n|---|---|\n");
    for f in functions() {
        let (sig, ret) = f.signature.split_once(" -> ").unwrap_or((f.signature, ""));
        out.push_str(&format!("| [`{sig}`](#{}) | {ret} |\n", f.name));
    }
    for f in functions() {
        out.push_str(&format!(
            "\n#### {name}\n\n`{sig}`\n\n{desc}\n\nExample: `{ex}`\n",
            name = f.name,
            sig = f.signature,
            desc = f.description,
            ex = f.example
        ));
    }
    out
}

#[test]
fn docs_function_reference_is_generated_from_functions() {
    let path = docs_path();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
        panic!("{} lacks the function reference markers", path.display())
    };
    let current = &text[a + START.len()..b];
    let wanted = format!("\n{}\n", reference());
    if current != wanted {
        if std::env::var_os("UPDATE_EXPR_DOCS").is_some() {
            let updated = format!("{}{START}{wanted}{}", &text[..a], &text[b..]);
            std::fs::write(&path, updated).expect("write docs");
        } else {
            panic!("docs/expressions.md is out of date: run UPDATE_EXPR_DOCS=1 cargo test --release -p orch-expr docs");
        }
    }
}

#[test]
fn every_function_is_documented() {
    let text = std::fs::read_to_string(docs_path()).expect("docs/expressions.md");
    for f in functions() {
        assert!(
            text.contains(&format!("#### {}\n", f.name)),
            "{} has no section",
            f.name
        );
        assert!(text.contains(f.example), "{}'s example is missing", f.name);
        // Every documented example parses.
        let e = crate::parse(&f.example.replace("${as_of}", "2024-03-31"));
        assert!(e.is_ok(), "example of {} does not parse: {:?}", f.name, e);
    }
}

#[test]
fn functions_and_enum_agree() {
    assert_eq!(crate::Func::ALL.len(), functions().len());
    for (i, f) in crate::Func::ALL.iter().enumerate() {
        assert_eq!(f.doc().name, functions()[i].name);
        assert_eq!(crate::Func::from_name(&f.name().to_uppercase()), Some(*f));
    }
}
