// `Runner::new()`, `Runner::builder()` and `Builder::new()` need no type annotation: the
// `HashMap::new()` pattern.
fn main() {
    let mut rt = runner::Runner::new();
    assert_eq!(rt.run(async { 1 }).unwrap(), 1);

    let mut built = runner::Runner::builder().debug(false).build();
    built.run(async {}).unwrap();

    let mut from_builder = runner::Builder::new().build();
    from_builder.run(async {}).unwrap();

    let pinned: runner::Runner<runner::DefaultLoop> = runner::Runner::new();
    drop(pinned);
}
