// `loop_factory` changes the loop type, inferred from the factory (Python's `loop_factory`); a
// specific backend's default loop is `Runner::<SmolLoop>::default()`.
fn main() {
    let mut rt = runner::Runner::builder()
        .loop_factory(runner::smol::SmolLoop::local)
        .build();
    let _: &runner::smol::SmolLoop = rt.get_loop().unwrap();
    assert_eq!(rt.run(async { 2 }).unwrap(), 2);

    let mut smol = runner::Runner::<runner::smol::SmolLoop>::default();
    assert_eq!(smol.run(async { 3 }).unwrap(), 3);

    let mut built = runner::Builder::<runner::smol::SmolLoop>::default()
        .debug(false)
        .build();
    assert_eq!(built.run(async { 4 }).unwrap(), 4);
}
