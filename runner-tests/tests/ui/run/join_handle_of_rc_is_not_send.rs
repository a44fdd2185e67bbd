// A `JoinHandle<T>` is `Send` only when `T` is.
use std::rc::Rc;

fn assert_send<T: Send>(_: &T) {}

fn main() {
    let mut rt: runner::Runner = runner::Runner::new();
    rt.run(async {
        let h: runner::JoinHandle<Rc<u8>> = runner::spawn_local(async { Rc::new(1) });
        assert_send(&h);
    })
    .unwrap();
}
