//! Context variables with Python's `contextvars` semantics.
//!
//! A [`Context`] is an immutable-by-sharing map from [`ContextVar`]s to values: copying one is
//! O(1) (it clones an `Arc`), and the first `set` after a copy clones the map once
//! (copy-on-write). Every thread has a current context; the runner installs its own around every
//! `run`, and each task's around each of its polls, so a task sees the values of the context it
//! was spawned from and its own sets never leak back to the spawner.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::ContextError;

type Value = Arc<dyn Any + Send + Sync>;
type Map = Arc<Vec<(usize, Value)>>;

static NEXT_VAR: AtomicUsize = AtomicUsize::new(1);
static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Context> = const { RefCell::new(Context::EMPTY) };
}

/// A mapping of [`ContextVar`]s to their values: Python's `contextvars.Context`.
///
/// Dropping a context drops its references to the values; nothing else happens.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// use runner::{Context, ContextVar};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let mut ctx = Context::copy_current();
/// ctx.run(|| USER.set("ada"));
/// assert_eq!(USER.get(), None);
/// assert_eq!(ctx.run(|| USER.get()), Some("ada"));
/// ```
#[derive(Default)]
pub struct Context {
    // 0 until a `set` needs an identity for its token; copies start again at 0.
    id: u64,
    map: Option<Map>,
}

impl Context {
    pub(crate) const EMPTY: Context = Context { id: 0, map: None };

    /// A new, empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// A copy of the calling thread's current context (Python's `copy_context()`). O(1).
    #[inline]
    pub fn copy_current() -> Self {
        CURRENT.with(|c| Context {
            id: 0,
            map: c.borrow().map.clone(),
        })
    }

    /// Runs `f` with this context as the thread's current one, then puts the previous one back,
    /// also when `f` panics. Sets made inside `f` stay in `self`.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let _guard = Enter::new(self);
        f()
    }

    /// Number of variables set in this context.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// True when no variable is set in this context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, var: usize) -> Option<&Value> {
        let map = self.map.as_deref()?;
        map.binary_search_by_key(&var, |(k, _)| *k)
            .ok()
            .map(|i| &map[i].1)
    }

    fn identity(&mut self) -> u64 {
        if self.id == 0 {
            self.id = NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed);
        }
        self.id
    }

    /// Sets or removes `var`; returns the previous value and, when the map was shared, the old
    /// map. The caller drops both after releasing its borrow of the thread's context: dropping a
    /// value runs user code, which may read context variables.
    fn replace(&mut self, var: usize, value: Option<Value>) -> (Option<Value>, Option<Map>) {
        let arc = self.map.get_or_insert_with(Default::default);
        let mut old_map = None;
        if Arc::get_mut(arc).is_none() {
            let fresh = Arc::new(Vec::clone(arc));
            old_map = Some(mem::replace(arc, fresh));
        }
        let map = Arc::get_mut(arc).expect("unique after the copy above");
        let prev = match (map.binary_search_by_key(&var, |(k, _)| *k), value) {
            (Ok(i), Some(v)) => Some(mem::replace(&mut map[i].1, v)),
            (Ok(i), None) => Some(map.remove(i).1),
            (Err(i), Some(v)) => {
                map.insert(i, (var, v));
                None
            }
            (Err(_), None) => None,
        };
        (prev, old_map)
    }
}

/// A clone is a copy, as Python's `Context.copy()`: a new context holding the same values, O(1).
/// Sets in one never show in the other, and a [`Token`] made in one is not valid in the other.
impl Clone for Context {
    fn clone(&self) -> Self {
        Context {
            id: 0,
            map: self.map.clone(),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("vars", &self.len())
            .finish()
    }
}

/// Installs a context as the thread's current one and moves it back on drop. Moving (not
/// cloning) keeps the per-poll cost to two thread-local swaps, with no atomic operations.
pub(crate) struct Enter<'a> {
    slot: &'a mut Context,
}

impl<'a> Enter<'a> {
    #[inline]
    pub(crate) fn new(slot: &'a mut Context) -> Self {
        swap_current(slot);
        Enter { slot }
    }
}

impl Drop for Enter<'_> {
    #[inline]
    fn drop(&mut self) {
        // `slot` holds the previous context while entered; swap it back in.
        swap_current(self.slot);
    }
}

/// Swaps `slot` with the thread's current context. A swap in place moves 16 bytes each way and
/// drops nothing, so it has no drop glue and inlines into the task wrapper's poll.
#[inline]
fn swap_current(slot: &mut Context) {
    CURRENT.with(|c| mem::swap(slot, &mut c.borrow_mut()));
}

/// A context variable: Python's `contextvars.ContextVar`.
///
/// Declare it in a `static`; it has no value until [`set`](Self::set) in the current context,
/// apart from its default. Values are cloned out by [`get`](Self::get), so keep them cheap to
/// clone (`Arc` what is large).
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// use runner::ContextVar;
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
/// static RETRIES: ContextVar<u32> = ContextVar::with_default("retries", 3);
///
/// assert_eq!(REQUEST_ID.get(), None);
/// assert_eq!(RETRIES.get(), Some(3));
/// let token = REQUEST_ID.set(7);
/// assert_eq!(REQUEST_ID.get(), Some(7));
/// REQUEST_ID.reset(token).unwrap();
/// assert_eq!(REQUEST_ID.get(), None);
/// ```
pub struct ContextVar<T: 'static> {
    name: &'static str,
    id: AtomicUsize,
    default: Option<T>,
}

impl<T: 'static> ContextVar<T> {
    /// A variable with no default.
    pub const fn new(name: &'static str) -> Self {
        ContextVar {
            name,
            id: AtomicUsize::new(0),
            default: None,
        }
    }

    /// A variable whose [`get`](Self::get) returns `default` where it was never set.
    pub const fn with_default(name: &'static str, default: T) -> Self {
        ContextVar {
            name,
            id: AtomicUsize::new(0),
            default: Some(default),
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn id(&self) -> usize {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let fresh = NEXT_VAR.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => fresh,
            Err(won) => won,
        }
    }
}

impl<T: Clone + Send + Sync + 'static> ContextVar<T> {
    /// The value in the current context, else the default, else `None`.
    pub fn get(&self) -> Option<T> {
        let id = self.id();
        let found = CURRENT.with(|c| {
            c.borrow()
                .lookup(id)
                .and_then(|v| v.downcast_ref::<T>().cloned())
        });
        found.or_else(|| self.default.clone())
    }

    /// Sets the value in the current context and returns a [`Token`] that can undo it.
    pub fn set(&self, value: T) -> Token<T> {
        let id = self.id();
        let value: Value = Arc::new(value);
        let (token, _old_map) = CURRENT.with(|c| {
            let mut ctx = c.borrow_mut();
            let (prev, old_map) = ctx.replace(id, Some(value));
            let token = Token {
                var: id,
                context: ctx.identity(),
                prev,
                _marker: PhantomData,
            };
            (token, old_map)
        });
        token
    }

    /// Puts the variable back to what it was before the `set` that made `token`.
    ///
    /// The previous value is the one the token saw at its `set`, whatever was set since (as in
    /// Python). A token can be used once: `reset` takes it by value, so Python's "token has
    /// already been used once" cannot happen; a `reset` that fails consumes the token too.
    ///
    /// # Errors
    ///
    /// [`ContextError::WrongVar`] when the token came from another variable,
    /// [`ContextError::WrongContext`] when it was made in another context (Python's rules).
    pub fn reset(&self, token: Token<T>) -> Result<(), ContextError> {
        if token.var != self.id() {
            return Err(ContextError::WrongVar);
        }
        let Token {
            var, context, prev, ..
        } = token;
        let outcome = CURRENT.with(|c| {
            let mut ctx = c.borrow_mut();
            if ctx.id != context {
                return Err(prev);
            }
            Ok(ctx.replace(var, prev))
        });
        // Whatever the outcome, the values it displaced are dropped here, with the thread's
        // context no longer borrowed.
        match outcome {
            Ok(displaced) => {
                drop(displaced);
                Ok(())
            }
            Err(prev) => {
                drop(prev);
                Err(ContextError::WrongContext)
            }
        }
    }
}

impl<T: 'static> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .finish()
    }
}

/// What [`ContextVar::set`] returns: the way back to the previous value, through
/// [`ContextVar::reset`]. Dropping it keeps the new value.
pub struct Token<T> {
    var: usize,
    context: u64,
    prev: Option<Value>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: Clone + 'static> Token<T> {
    /// The value before the `set`, if there was one (not counting the default).
    pub fn old_value(&self) -> Option<T> {
        self.prev.as_ref()?.downcast_ref::<T>().cloned()
    }
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var)
            .field("context", &self.context)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: ContextVar<i32> = ContextVar::new("a");
    static B: ContextVar<i32> = ContextVar::with_default("b", -1);

    #[test]
    fn copy_is_isolated_both_ways() {
        let t = A.set(1);
        let mut copy = Context::copy_current();
        copy.run(|| {
            assert_eq!(A.get(), Some(1));
            A.set(2);
        });
        assert_eq!(A.get(), Some(1));
        assert_eq!(copy.run(|| A.get()), Some(2));
        A.reset(t).unwrap();
        assert_eq!(A.get(), None);
    }

    #[test]
    fn token_rules() {
        let mut other = Context::new();
        let t = other.run(|| B.set(5));
        assert_eq!(B.get(), Some(-1));
        assert_eq!(B.reset(t), Err(ContextError::WrongContext));
        let t = B.set(3);
        assert_eq!(t.old_value(), None);
        assert_eq!(A.reset(same_type_other_var(t)), Err(ContextError::WrongVar));
    }

    // A token of B presented to A: same T, different variable.
    fn same_type_other_var(t: Token<i32>) -> Token<i32> {
        t
    }

    #[test]
    fn run_restores_on_panic() {
        let mut ctx = Context::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.run(|| {
                A.set(9);
                panic!("boom")
            })
        }));
        assert!(r.is_err());
        assert_eq!(A.get(), None);
        assert_eq!(ctx.run(|| A.get()), Some(9));
    }

    #[test]
    fn clone_is_a_new_context_for_tokens() {
        let mut ctx = Context::new();
        let t = ctx.run(|| A.set(1));
        let mut copy = ctx.clone();
        assert_eq!(copy.run(|| A.get()), Some(1));
        assert_eq!(copy.run(|| A.reset(t)), Err(ContextError::WrongContext));
        assert_eq!(ctx.run(|| A.get()), Some(1));
    }

    #[test]
    fn reset_restores_absence_then_default() {
        let mut ctx = Context::new();
        ctx.run(|| {
            let t1 = A.set(1);
            let t2 = A.set(2);
            assert_eq!(t2.old_value(), Some(1));
            A.reset(t2).unwrap();
            assert_eq!(A.get(), Some(1));
            A.reset(t1).unwrap();
            assert_eq!(A.get(), None);
            let t = B.set(4);
            assert_eq!(B.get(), Some(4));
            B.reset(t).unwrap();
            assert_eq!(B.get(), Some(-1), "back to the default");
        });
    }

    // A value whose destructor reads a context variable: dropping it inside `set` or `reset`
    // while the thread's context is borrowed would panic.
    #[derive(Clone)]
    struct ReadsOnDrop;
    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            let _ = A.get();
        }
    }
    static R: ContextVar<ReadsOnDrop> = ContextVar::new("r");

    #[test]
    fn dropping_a_displaced_value_may_read_the_context() {
        let mut ctx = Context::new();
        ctx.run(|| {
            let t = R.set(ReadsOnDrop);
            let t2 = R.set(ReadsOnDrop);
            R.reset(t2).unwrap();
            R.reset(t).unwrap();
            // A shared map: the copy-on-write path drops the old map outside the borrow too.
            let _copy = Context::copy_current();
            let t = R.set(ReadsOnDrop);
            drop(Context::copy_current());
            R.reset(t).unwrap();
        });
        let mut other = Context::new();
        let t = other.run(|| R.set(ReadsOnDrop));
        assert_eq!(R.reset(t), Err(ContextError::WrongContext));
    }
}
