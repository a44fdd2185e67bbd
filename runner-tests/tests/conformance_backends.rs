//! The conformance kit on every backend flavour compiled in, plus the hand-written loop of the
//! `custom_loop` example and core's std-only reference loop; and the check that
//! docs/conformance.md says what the kit checks (`conformance_doc_matches_the_kit`).

#[path = "../../examples/custom_loop/minimal_loop.rs"]
#[allow(dead_code)]
mod minimal_loop;

use runner_conformance::{suite, Kit};

#[cfg(feature = "tokio")]
fn kit_tokio_current() -> Kit<runner::tokio::TokioLoop> {
    Kit::new("tokio_current", runner::tokio::TokioLoop::current_thread)
}
#[cfg(feature = "tokio")]
fn kit_tokio_multi() -> Kit<runner::tokio::TokioLoop> {
    Kit::new("tokio_multi", || runner::tokio::TokioLoop::multi_thread(2)).multi_thread(true)
}
#[cfg(feature = "smol")]
fn kit_smol_local() -> Kit<runner::smol::SmolLoop> {
    Kit::new("smol_local", runner::smol::SmolLoop::local)
}
#[cfg(feature = "smol")]
fn kit_smol_multi() -> Kit<runner::smol::SmolLoop> {
    Kit::new("smol_multi", || runner::smol::SmolLoop::multi_thread(2)).multi_thread(true)
}
/// `tokio_multi` with `Builder::backend_tasks`: one tokio task per runner task.
#[cfg(feature = "tokio")]
fn kit_tokio_multi_backend_tasks() -> Kit<runner::tokio::TokioLoop> {
    Kit::new("tokio_multi_backend_tasks", || {
        runner::tokio::TokioLoop::multi_thread(2)
    })
    .multi_thread(true)
    .backend_tasks(true)
}
/// `smol_multi` with `Builder::backend_tasks`: one async-executor task per runner task.
#[cfg(feature = "smol")]
fn kit_smol_multi_backend_tasks() -> Kit<runner::smol::SmolLoop> {
    Kit::new("smol_multi_backend_tasks", || {
        runner::smol::SmolLoop::multi_thread(2)
    })
    .multi_thread(true)
    .backend_tasks(true)
}
#[cfg(all(feature = "glommio", target_os = "linux"))]
fn kit_glommio() -> Kit<runner::glommio::GlommioLoop> {
    Kit::new("glommio", runner::glommio::GlommioLoop::new).send(false)
}
fn kit_custom() -> Kit<minimal_loop::MiniLoop> {
    Kit::new("custom", minimal_loop::MiniLoop::new)
}
fn kit_test_loop() -> Kit<runner::testing::TestLoop> {
    Kit::new("test_loop", runner::testing::TestLoop::new)
}
/// `AnyLoop` as `RUNNER_BACKEND` picks it (CI runs this suite once per compiled-in backend).
#[cfg(any(
    feature = "tokio",
    feature = "smol",
    all(feature = "glommio", target_os = "linux")
))]
fn kit_any_loop() -> Kit<runner::AnyLoop> {
    Kit::new("any_loop", runner::AnyLoop::from_env)
        .multi_thread(runner::Backend::from_env().is_ok_and(runner::Backend::is_multi_thread))
        .send(!cfg!(all(feature = "glommio", target_os = "linux")))
}

#[cfg(feature = "tokio")]
suite!(tokio_current, kit_tokio_current());
#[cfg(feature = "tokio")]
suite!(tokio_multi, kit_tokio_multi());
#[cfg(feature = "smol")]
suite!(smol_local, kit_smol_local());
#[cfg(feature = "smol")]
suite!(smol_multi, kit_smol_multi());
#[cfg(feature = "tokio")]
suite!(tokio_multi_backend_tasks, kit_tokio_multi_backend_tasks());
#[cfg(feature = "smol")]
suite!(smol_multi_backend_tasks, kit_smol_multi_backend_tasks());
#[cfg(all(feature = "glommio", target_os = "linux"))]
suite!(glommio, kit_glommio());
suite!(custom, kit_custom());
suite!(test_loop, kit_test_loop());
#[cfg(any(
    feature = "tokio",
    feature = "smol",
    all(feature = "glommio", target_os = "linux")
))]
suite!(any_loop, kit_any_loop());

/// docs/conformance.md, generated from and checked against the kit.
#[cfg(all(
    feature = "tokio",
    feature = "smol",
    feature = "glommio",
    target_os = "linux"
))]
mod doc {
    use super::*;

    /// The fixed loops of this file (not `any_loop`, whose capabilities are the chosen backend's),
    /// with their capabilities: the columns of docs/conformance.md.
    fn loops() -> Vec<(&'static str, runner_conformance::Caps)> {
        vec![
            ("tokio_current", kit_tokio_current().capabilities()),
            ("tokio_multi", kit_tokio_multi().capabilities()),
            ("smol_local", kit_smol_local().capabilities()),
            ("smol_multi", kit_smol_multi().capabilities()),
            ("glommio", kit_glommio().capabilities()),
            ("custom", kit_custom().capabilities()),
            ("test_loop", kit_test_loop().capabilities()),
        ]
    }

    const GENERATED_START: &str = "<!-- generated from the kit by runner-tests/tests/conformance_backends.rs: \
    do not edit; RUNNER_BLESS=1 cargo test -p runner-tests --all-features --test conformance_backends \
    conformance_doc rewrites it -->";
    const GENERATED_END: &str = "<!-- end of the generated part -->";

    /// The generated part of docs/conformance.md: the loops and their capabilities, then one row per
    /// case of the kit with its reach on each loop (✓ its whole claim; ◐ n: less, as limit n says).
    fn generated() -> String {
        use runner_conformance::{CASES, LIMITS};
        use std::fmt::Write;
        let loops = loops();
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut s = String::new();
        writeln!(
            s,
            "The kit has {} cases. `runner-tests/tests/conformance_backends.rs` runs every one of them on each \
             loop below, and on `any_loop` (`runner::AnyLoop`, as `RUNNER_BACKEND` picks it: CI runs \
             it once per compiled-in backend, and its reach is that backend's column). Each stamped \
             test first checks the loop's declared capabilities against the loop itself \
             (`runner_conformance::check_caps`) and runs its case under a watchdog.\n",
            CASES.len()
        )
        .unwrap();
        s.push_str("| loop | multi_thread | local_tasks | send |\n|---|---|---|---|\n");
        for (name, caps) in &loops {
            writeln!(
                s,
                "| {name} | {} | {} | {} |",
                yes(caps.multi_thread),
                yes(caps.local_tasks),
                yes(caps.send)
            )
            .unwrap();
        }
        s.push_str(
            "\n✓ the case checks its whole claim on that loop; ◐ n it checks less there, as limit n \
             below says (`runner_conformance::LIMITS`).\n\n",
        );
        s.push_str("| case |");
        for (name, _) in &loops {
            write!(s, " {name} |").unwrap();
        }
        s.push_str("\n|---|");
        for _ in &loops {
            s.push_str("---|");
        }
        s.push('\n');
        let mut used = Vec::new();
        for case in CASES {
            write!(s, "| `{case}` |").unwrap();
            for (_, caps) in &loops {
                let limits: Vec<usize> = LIMITS
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.case == *case && l.on.applies(*caps))
                    .map(|(i, _)| i)
                    .collect();
                if limits.is_empty() {
                    s.push_str(" ✓ |");
                } else {
                    let mut cell = String::from(" ◐");
                    for i in limits {
                        if !used.contains(&i) {
                            used.push(i);
                        }
                        let n = used.iter().position(|&u| u == i).unwrap() + 1;
                        write!(cell, " {n}").unwrap();
                    }
                    s.push_str(&cell);
                    s.push_str(" |");
                }
            }
            s.push('\n');
        }
        s.push_str("\nLimits:\n\n");
        for (n, &i) in used.iter().enumerate() {
            let l = &LIMITS[i];
            let on = match l.on {
                runner_conformance::When::MultiThread => "on multi-thread loops",
                runner_conformance::When::CurrentThread => "on current-thread loops",
                runner_conformance::When::NoLocalTasks => "on loops without local tasks",
                runner_conformance::When::NotSend => "on loops whose runner is not `Send`",
            };
            writeln!(s, "{}. `{}`, {on}: {}.", n + 1, l.case, l.what).unwrap();
        }
        s
    }

    /// The repository's root, where docs/ is (found upwards from this package, wherever it lives).
    fn repo_root() -> std::path::PathBuf {
        let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        while !dir.join("docs").join("conformance.md").exists() {
            assert!(
                dir.pop(),
                "docs/conformance.md not found above this package"
            );
        }
        dir
    }

    /// docs/conformance.md against the kit: its generated part is what [`generated`] makes from
    /// `CASES`, `LIMITS` and the loops of this file, and every case it names elsewhere exists.
    #[test]
    fn conformance_doc_matches_the_kit() {
        let path = repo_root().join("docs").join("conformance.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let (before, rest) = text
            .split_once(GENERATED_START)
            .expect("docs/conformance.md has the generated part's start marker");
        let (old, after) = rest
            .split_once(GENERATED_END)
            .expect("docs/conformance.md has the generated part's end marker");
        let new = format!("\n{}", generated());
        if old != new {
            if std::env::var_os("RUNNER_BLESS").is_some() {
                std::fs::write(
                    &path,
                    format!("{before}{GENERATED_START}{new}{GENERATED_END}{after}"),
                )
                .unwrap();
            } else {
                panic!(
                    "docs/conformance.md does not match the kit (cases, limits or loops changed): \
                     run `RUNNER_BLESS=1 cargo test -p runner-tests --all-features --test conformance_backends \
                     conformance_doc` and commit the result"
                );
            }
        }
        // Every `module::case` the hand-written parts name is a case of the kit.
        for part in [before, after] {
            for name in part.split('`').skip(1).step_by(2) {
                let looks_like_case = runner_conformance::CASES
                    .iter()
                    .any(|c| name.starts_with(&c[..c.find("::").unwrap() + 2]))
                    && !name.contains(' ')
                    && !name.contains('*');
                if looks_like_case {
                    assert!(
                        runner_conformance::CASES.contains(&name),
                        "docs/conformance.md names `{name}`, which is not a case of the kit"
                    );
                }
            }
        }
        assert!(
            !text.contains(concat!("..", "/shared")),
            "the doc links outside the repository"
        );
    }
}
