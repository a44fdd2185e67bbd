//! Context variables against a reference model (CONTRACT §3 "Context variables"; issue 5).
//!
//! proptest generates programs of random `set` / `reset` / `get` / `yield` / `spawn` operations,
//! spread over several `run`s and `run_with_context`s of one runner, with tokens kept across runs
//! and handed to spawned tasks. A sequential model, a `Vec` of maps (one map per context: the
//! runner's, the explicit one, then one per spawned task, copied from its spawner's at spawn),
//! says what every `get` and `reset` must return; the real runner must agree on every one.
//!
//! It runs on every loop: core's `TestLoop`, the hand-written loop of the `custom_loop` example,
//! and every backend flavour compiled in.
//!
//! A spawned task's observations cannot depend on when it runs (its context is its own copy), so
//! the model runs each child to completion at its spawn, and the real program, whose children run
//! concurrently, reports them when it joins them, at the end of the spawner's frame.

#[path = "../../examples/custom_loop/minimal_loop.rs"]
#[allow(dead_code)]
mod minimal_loop;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use proptest::prelude::*;
use runner::{Context, ContextError, ContextVar, EventLoop, Token};

static V0: ContextVar<i64> = ContextVar::new("v0");
static V1: ContextVar<i64> = ContextVar::with_default("v1", 100);
static V2: ContextVar<i64> = ContextVar::new("v2");
const VARS: u8 = 3;
const DEFAULTS: [Option<i64>; 3] = [None, Some(100), None];

fn var(i: u8) -> &'static ContextVar<i64> {
    [&V0, &V1, &V2][usize::from(i)]
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, i64),
    Get(u8),
    /// Reset the picked token (index modulo the frame's tokens) through its own variable.
    Reset(usize),
    /// Reset the picked token through variable `.1`: `WrongVar` unless it is the token's.
    ResetVia(usize, u8),
    Yield,
    /// Spawn a task running `ops`; `give` moves one of this frame's tokens into it, where it is
    /// foreign (`WrongContext`).
    Spawn {
        ops: Vec<Op>,
        give: Option<usize>,
    },
}

#[derive(Debug, Clone)]
struct Run {
    /// `run_with_context` on the one explicit context, instead of `run`.
    explicit: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Obs {
    Get(Option<i64>),
    Reset(Result<(), ContextError>),
    NoToken,
    Child(Vec<Obs>),
    /// Every variable, at the end of a frame.
    End([Option<i64>; 3]),
}

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![
        4 => (0..VARS, 0..1000i64).prop_map(|(v, x)| Op::Set(v, x)),
        3 => (0..VARS).prop_map(Op::Get),
        3 => any::<usize>().prop_map(Op::Reset),
        1 => (any::<usize>(), 0..VARS).prop_map(|(t, v)| Op::ResetVia(t, v)),
        1 => Just(Op::Yield),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        (
            prop::collection::vec(inner, 0..6),
            prop::option::of(any::<usize>()),
        )
            .prop_map(|(ops, give)| Op::Spawn { ops, give })
    })
}

fn program() -> impl Strategy<Value = (Vec<Run>, i64)> {
    let run = (any::<bool>(), prop::collection::vec(op(), 0..12))
        .prop_map(|(explicit, ops)| Run { explicit, ops });
    (prop::collection::vec(run, 1..5), 0..1000i64)
}

// ---- The model ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct ModelToken {
    ctx: usize,
    var: u8,
    prev: Option<i64>,
}

struct Model {
    /// Context `i`'s variables; 0 is the runner's, 1 the explicit one.
    contexts: Vec<BTreeMap<u8, i64>>,
}

impl Model {
    fn get(&self, ctx: usize, v: u8) -> Option<i64> {
        self.contexts[ctx]
            .get(&v)
            .copied()
            .or(DEFAULTS[usize::from(v)])
    }

    fn frame(&mut self, ctx: usize, ops: &[Op], tokens: &mut Vec<ModelToken>) -> Vec<Obs> {
        let mut obs = Vec::new();
        let mut children = Vec::new();
        for op in ops {
            match op {
                Op::Set(v, x) => {
                    let prev = self.contexts[ctx].insert(*v, *x);
                    tokens.push(ModelToken { ctx, var: *v, prev });
                }
                Op::Get(v) => obs.push(Obs::Get(self.get(ctx, *v))),
                Op::Reset(pick) | Op::ResetVia(pick, _) => {
                    if tokens.is_empty() {
                        obs.push(Obs::NoToken);
                        continue;
                    }
                    let t = tokens.remove(pick % tokens.len());
                    let via = match op {
                        Op::ResetVia(_, via) => *via,
                        _ => t.var,
                    };
                    let r = if via != t.var {
                        Err(ContextError::WrongVar)
                    } else if t.ctx != ctx {
                        Err(ContextError::WrongContext)
                    } else {
                        match t.prev {
                            Some(p) => self.contexts[ctx].insert(t.var, p),
                            None => self.contexts[ctx].remove(&t.var),
                        };
                        Ok(())
                    };
                    obs.push(Obs::Reset(r));
                }
                Op::Yield => {}
                Op::Spawn { ops, give } => {
                    let mut child_tokens = Vec::new();
                    if let (Some(g), false) = (give, tokens.is_empty()) {
                        child_tokens.push(tokens.remove(g % tokens.len()));
                    }
                    let copy = self.contexts[ctx].clone();
                    self.contexts.push(copy);
                    let child = self.contexts.len() - 1;
                    children.push(Obs::Child(self.frame(child, ops, &mut child_tokens)));
                }
            }
        }
        obs.extend(children);
        obs.push(Obs::End([0, 1, 2].map(|v| self.get(ctx, v))));
        obs
    }
}

fn model(runs: &[Run], init: i64) -> Vec<Vec<Obs>> {
    let mut m = Model {
        // The runner snapshots the caller's context at lazy init: V0 = init.
        contexts: vec![BTreeMap::from([(0, init)]), BTreeMap::new()],
    };
    let mut tokens = Vec::new();
    runs.iter()
        .map(|r| m.frame(usize::from(r.explicit), &r.ops, &mut tokens))
        .collect()
}

// ---- The real thing -------------------------------------------------------------------------

struct RealToken {
    var: u8,
    token: Token<i64>,
}

type Frame = Pin<Box<dyn Future<Output = (Vec<Obs>, Vec<RealToken>)> + Send>>;

fn frame(ops: Vec<Op>, mut tokens: Vec<RealToken>) -> Frame {
    Box::pin(async move {
        let mut obs = Vec::new();
        let mut children = Vec::new();
        for op in ops {
            match op {
                Op::Set(v, x) => tokens.push(RealToken {
                    var: v,
                    token: var(v).set(x),
                }),
                Op::Get(v) => obs.push(Obs::Get(var(v).get())),
                Op::Reset(pick) | Op::ResetVia(pick, _) => {
                    if tokens.is_empty() {
                        obs.push(Obs::NoToken);
                        continue;
                    }
                    let t = tokens.remove(pick % tokens.len());
                    let via = match op {
                        Op::ResetVia(_, via) => via,
                        _ => t.var,
                    };
                    obs.push(Obs::Reset(var(via).reset(t.token)));
                }
                Op::Yield => runner::yield_now().await,
                Op::Spawn { ops, give } => {
                    let mut child_tokens = Vec::new();
                    if let (Some(g), false) = (give, tokens.is_empty()) {
                        child_tokens.push(tokens.remove(g % tokens.len()));
                    }
                    children.push(runner::spawn(frame(ops, child_tokens)));
                }
            }
        }
        for c in children {
            obs.push(Obs::Child(c.await.unwrap().0));
        }
        obs.push(Obs::End([0, 1, 2].map(|v| var(v).get())));
        (obs, tokens)
    })
}

fn real<L: EventLoop>(builder: runner::Builder<L>, runs: &[Run], init: i64) -> Vec<Vec<Obs>> {
    Context::new().run(|| {
        let mut rt = builder.build();
        V0.set(init);
        rt.get_loop().unwrap();
        // Set after init: no run may see it.
        V0.set(init + 1);
        V2.set(-5);
        let mut explicit = Context::new();
        let mut tokens = Vec::new();
        let mut out = Vec::new();
        for r in runs {
            let f = frame(r.ops.clone(), std::mem::take(&mut tokens));
            let (obs, left) = if r.explicit {
                rt.run_with_context(&mut explicit, f).unwrap()
            } else {
                rt.run(f).unwrap()
            };
            tokens = left;
            out.push(obs);
        }
        assert_eq!((V0.get(), V2.get()), (Some(init + 1), Some(-5)));
        out
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn test_loop_matches_model((runs, init) in program()) {
        let builder = runner::Builder::<runner::testing::TestLoop>::default();
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_current_matches_model((runs, init) in program()) {
        let builder = runner::builder()
            .loop_factory(runner::tokio::TokioLoop::current_thread);
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_multi_matches_model((runs, init) in program()) {
        let builder = runner::builder()
            .loop_factory(|| runner::tokio::TokioLoop::multi_thread(2));
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_local_matches_model((runs, init) in program()) {
        let builder = runner::builder().loop_factory(runner::smol::SmolLoop::local);
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_multi_matches_model((runs, init) in program()) {
        let builder = runner::builder()
            .loop_factory(|| runner::smol::SmolLoop::multi_thread(2));
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[cfg(all(feature = "glommio", target_os = "linux"))]
    #[test]
    fn glommio_matches_model((runs, init) in program()) {
        let builder = runner::builder().loop_factory(runner::glommio::GlommioLoop::new);
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }

    #[test]
    fn custom_matches_model((runs, init) in program()) {
        let builder = runner::Runner::builder()
            .loop_factory(minimal_loop::MiniLoop::new);
        prop_assert_eq!(real(builder, &runs, init), model(&runs, init));
    }
}

/// The cost budget of issue 5: under 20 ns per `get` and under 10 ns added per poll. Not a
/// benchmark (the benchmark issue has those): a quick check, ignored by default because timings
/// mean nothing in a debug build or on a loaded machine. Each figure is the best of 100 rounds of
/// 100k iterations (10M in all): a round (a few ms) slowed by other processes does not count. Run it
/// with `cargo test --release --test context_model -- --ignored --nocapture context_cost`.
#[test]
#[ignore = "timing; run in release mode by hand"]
fn context_cost() {
    use std::hint::black_box;
    use std::time::Instant;

    fn best_ns(mut f: impl FnMut()) -> f64 {
        const ROUND: u32 = 100_000;
        (0..100)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ROUND {
                    f();
                }
                start.elapsed().as_secs_f64() * 1e9 / f64::from(ROUND)
            })
            .fold(f64::INFINITY, f64::min)
    }

    static UNSET: ContextVar<u64> = ContextVar::with_default("unset", 9);
    Context::new().run(|| {
        V0.set(1);
        V1.set(2);
        V2.set(3);
        let get_set = best_ns(|| {
            black_box(black_box(&V1).get());
        });
        let get_default = best_ns(|| {
            black_box(black_box(&UNSET).get());
        });
        // What the task wrapper does around each poll: move the task's context in, then out.
        let mut task_ctx = Context::copy_current();
        let swap = best_ns(|| black_box(&mut task_ctx).run(|| black_box(())));
        let mut empty = Context::new();
        let swap_empty = best_ns(|| black_box(&mut empty).run(|| black_box(())));
        let baseline = best_ns(|| black_box(()));
        println!(
            "get (set var, 3 vars in context): {get_set:.2} ns\n\
             get (unset var, default):         {get_default:.2} ns\n\
             per-poll context swap (3 vars):   {swap:.2} ns\n\
             per-poll context swap (empty):    {swap_empty:.2} ns\n\
             empty loop iteration:             {baseline:.2} ns"
        );
        assert!(get_set < 20.0 && get_default < 20.0, "get over budget");
        assert!(
            swap < 10.0 && swap_empty < 10.0,
            "per-poll swap over budget"
        );
    });
}
