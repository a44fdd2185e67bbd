//! The `#[runner::main]` and `#[runner::test]` attributes of the
//! [`runner`](https://docs.rs/runner) crate. Use them through `runner`, which re-exports them:
//! the code they generate names only `::runner::...` paths, so a crate that uses them depends on
//! `runner` alone.
//!
//! A proc macro cannot see the cargo features of the crate it expands for, so everything that
//! depends on which backends are compiled in (the default loop, the list of backends that
//! `all_backends` runs on, the error when a named backend is missing) lives in the facade's
//! hidden `runner::__private` module; this crate only parses and checks the arguments.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

// Documented at the facade's `pub use`, where the doctests can use `runner`; rustdoc appends an
// item's own docs to its re-export's, so docs here would show twice.
#[allow(missing_docs)]
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

#[allow(missing_docs)]
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[runner::main]",
            Kind::Test => "#[runner::test]",
        }
    }

    fn valid_args(self) -> &'static str {
        match self {
            Kind::Main => "`backend`, `flavor`, `workers`, `print_close_report`",
            Kind::Test => "`backend`, `flavor`, `workers`, `all_backends`",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Tokio,
    Smol,
    Glommio,
}

const BACKENDS: &str = r#""tokio", "smol" or "glommio""#;
const FLAVORS: &str = r#""current_thread" or "multi_thread""#;

#[derive(Default)]
struct Args {
    backend: Option<(Backend, Span)>,
    /// `true` for `multi_thread`.
    flavor: Option<(bool, Span)>,
    workers: Option<(usize, Span)>,
    all_backends: Option<Span>,
    print_close_report: Option<Span>,
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        // Not a function: let the compiler say so on the item, with our message on top.
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!("{} applies to an `async fn`", kind.attr()),
            );
            return with_error(item, e);
        }
    };
    match parse_args(kind, args).and_then(|a| check_fn(kind, &item, &a).map(|()| a)) {
        Ok(args) => generate(kind, item, &args),
        Err(e) => fallback(item, e),
    }
}

fn with_error(item: TokenStream2, e: syn::Error) -> TokenStream2 {
    let e = e.to_compile_error();
    quote! { #e #item }
}

/// On an error, keep the function (without `async`, with a body that type-checks against any
/// return type) so that the only errors the user sees are ours, not a cascade of "`main` is not
/// allowed to be `async`" or "no `main` function".
fn fallback(mut item: ItemFn, e: syn::Error) -> TokenStream2 {
    item.sig.asyncness = None;
    let e = e.to_compile_error();
    let ItemFn {
        attrs, vis, sig, ..
    } = item;
    quote! {
        #e
        #(#attrs)*
        #[allow(unreachable_code, unused_variables)]
        #vis #sig { ::core::panic!() }
    }
}

fn parse_args(kind: Kind, args: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut out = Args::default();
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match (key.as_str(), &meta) {
            ("all_backends", Meta::Path(p)) if kind == Kind::Test => {
                if out.all_backends.replace(p.span()).is_some() {
                    return Err(duplicate(p.span(), "all_backends"));
                }
            }
            ("print_close_report", Meta::Path(p)) if kind == Kind::Main => {
                if out.print_close_report.replace(p.span()).is_some() {
                    return Err(duplicate(p.span(), "print_close_report"));
                }
            }
            ("print_close_report", _) if kind == Kind::Main => {
                return Err(syn::Error::new(
                    meta.span(),
                    "`print_close_report` takes no value, as in `#[runner::main(print_close_report)]`",
                ));
            }
            ("all_backends", _) if kind == Kind::Main => {
                return Err(syn::Error::new(
                    meta.span(),
                    format!(
                        "`all_backends` is an argument of `#[runner::test]`; `#[runner::main]` takes {}",
                        kind.valid_args()
                    ),
                ));
            }
            ("backend", Meta::NameValue(nv)) => {
                let (value, span) = string_value(&nv.value, "backend", BACKENDS)?;
                let backend = match value.as_str() {
                    "tokio" => Backend::Tokio,
                    "smol" => Backend::Smol,
                    "glommio" => Backend::Glommio,
                    other => {
                        return Err(syn::Error::new(
                            span,
                            format!("unknown backend \"{other}\": expected {BACKENDS}"),
                        ))
                    }
                };
                if out.backend.replace((backend, span)).is_some() {
                    return Err(duplicate(meta.span(), "backend"));
                }
            }
            ("flavor", Meta::NameValue(nv)) => {
                let (value, span) = string_value(&nv.value, "flavor", FLAVORS)?;
                let multi = match value.as_str() {
                    "current_thread" => false,
                    "multi_thread" => true,
                    other => {
                        return Err(syn::Error::new(
                            span,
                            format!("unknown flavor \"{other}\": expected {FLAVORS}"),
                        ))
                    }
                };
                if out.flavor.replace((multi, span)).is_some() {
                    return Err(duplicate(meta.span(), "flavor"));
                }
            }
            ("workers", Meta::NameValue(nv)) => {
                let n = match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(i), ..
                    }) => i.base10_parse::<usize>().ok().filter(|n| *n >= 1),
                    _ => None,
                };
                let Some(n) = n else {
                    return Err(syn::Error::new(
                        nv.value.span(),
                        "`workers` takes an integer of at least 1, as in `workers = 4`",
                    ));
                };
                if out.workers.replace((n, nv.value.span())).is_some() {
                    return Err(duplicate(meta.span(), "workers"));
                }
            }
            ("backend" | "flavor" | "workers", _) => {
                let example = match key.as_str() {
                    "backend" => "backend = \"smol\"",
                    "flavor" => "flavor = \"multi_thread\"",
                    _ => "workers = 4",
                };
                return Err(syn::Error::new(
                    meta.span(),
                    format!("`{key}` takes a value, as in `{example}`"),
                ));
            }
            _ => {
                let shown = if key.is_empty() {
                    quote!(#meta).to_string()
                } else {
                    key
                };
                return Err(syn::Error::new(
                    meta.span(),
                    format!(
                        "unknown argument `{shown}`: {} takes {}",
                        kind.attr(),
                        kind.valid_args()
                    ),
                ));
            }
        }
    }

    if let Some(span) = out.all_backends {
        if out.backend.is_some() || out.flavor.is_some() || out.workers.is_some() {
            return Err(syn::Error::new(
                span,
                "`all_backends` runs the test on every backend flavour compiled in: remove `backend`, `flavor` and `workers`",
            ));
        }
    }
    if let Some((_, span)) = out.workers {
        if !matches!(out.flavor, Some((true, _))) {
            return Err(syn::Error::new(
                span,
                "`workers` sets the size of a multi-thread loop: add `flavor = \"multi_thread\"`",
            ));
        }
    }
    if let (Some((Backend::Glommio, _)), Some((true, span))) = (out.backend, out.flavor) {
        return Err(syn::Error::new(
            span,
            "the glommio backend has one flavor, a thread-per-core executor on the calling thread: remove `flavor = \"multi_thread\"`",
        ));
    }
    Ok(out)
}

fn string_value(expr: &Expr, key: &str, choices: &str) -> syn::Result<(String, Span)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok((s.value(), s.span())),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string: {choices}"),
        )),
    }
}

fn duplicate(span: Span, key: &str) -> syn::Error {
    syn::Error::new(span, format!("`{key}` is given more than once"))
}

fn check_fn(kind: Kind, item: &ItemFn, args: &Args) -> syn::Result<()> {
    if item.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            item.sig.fn_token.span(),
            format!(
                "the `async` keyword is missing from the function declaration: {} runs an `async fn`",
                kind.attr()
            ),
        ));
    }
    if kind == Kind::Test {
        if let Some(attr) = item.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new(
                attr.span(),
                "a second test attribute is supplied: remove `#[test]`, `#[runner::test]` adds it",
            ));
        }
        if !item.sig.inputs.is_empty() {
            return Err(syn::Error::new(
                item.sig.inputs.span(),
                "test functions take no arguments",
            ));
        }
    }
    if args.all_backends.is_some() && !item.sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.sig.generics.span(),
            "`#[runner::test(all_backends)]` functions cannot be generic",
        ));
    }
    Ok(())
}

fn runner_expr(args: &Args) -> TokenStream2 {
    // Every token gets the backend's span, so that a "backend not compiled in" error points at
    // `"smol"` in the attribute.
    let span = args.backend.map_or_else(Span::call_site, |(_, s)| s);
    let backend = match args.backend.map(|(b, _)| b) {
        None => quote_spanned!(span=> ::runner::__private::DefaultBackend),
        Some(Backend::Tokio) => quote_spanned!(span=> ::runner::__private::Tokio),
        Some(Backend::Smol) => quote_spanned!(span=> ::runner::__private::Smol),
        Some(Backend::Glommio) => quote_spanned!(span=> ::runner::__private::Glommio),
    };
    let flavor = match args.flavor {
        Some((true, _)) => quote_spanned!(span=> ::runner::__private::Flavor::MultiThread),
        _ => quote_spanned!(span=> ::runner::__private::Flavor::CurrentThread),
    };
    let workers = match args.workers {
        Some((n, _)) => quote_spanned!(span=> ::core::option::Option::Some(#n)),
        None => quote_spanned!(span=> ::core::option::Option::None),
    };
    quote_spanned! {span=>
        ::runner::__private::runner::<#backend>(#flavor, #workers)
    }
}

fn generate(kind: Kind, item: ItemFn, args: &Args) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = item;
    sig.asyncness = None;

    if args.all_backends.is_some() {
        let output = &sig.output;
        let ident = &sig.ident;
        // A fresh future per backend: the body becomes an inner `async fn` that the facade calls
        // once per backend flavour. Its declared output keeps `?` inferring as the user wrote it.
        return quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #ident() {
                async fn __runner_test_body() #output #block
                ::runner::__private::for_each_backend(__runner_test_body)
            }
        };
    }

    let rt = runner_expr(args);
    let (test_attr, call) = match kind {
        Kind::Main => {
            let print = args.print_close_report.is_some();
            (
                quote!(),
                quote!(::runner::__private::run_main(#rt, __runner_body, #print)),
            )
        }
        Kind::Test => (
            quote!(#[::core::prelude::v1::test]),
            quote!(::runner::__private::run_test(#rt, __runner_body)),
        ),
    };
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            let __runner_body = async move #block;
            #call
        }
    }
}
