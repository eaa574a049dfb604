//! A loop of any capacity lives where its owner puts it without passing
//! through the stack: on the heap (`Loop::init_in` a `Box::new_uninit()`)
//! or in a `static` (`StaticLoop`), from a thread with the default (2 MiB)
//! stack.

use core::time::Duration;
use linux_event::backend::{Epoll, Sim};
use linux_event::{Loop, StaticLoop, TimerEvent};

const MILLION: usize = 1_000_000;

fn count(_lp: &mut Loop<u64, 16, MILLION, Sim<16>>, fired: &mut u64, ev: TimerEvent) {
    *fired += ev.data();
}

#[test]
fn a_million_timer_loop_is_built_on_the_heap_from_a_default_stack_thread() {
    // std::thread's default stack is 2 MiB; the loop is tens of MiB.
    let fired = std::thread::spawn(|| {
        let mut room = Box::<Loop<u64, 16, MILLION, Sim<16>>>::new_uninit();
        let mut lp = Loop::init_in(&mut room, Sim::new()).unwrap();
        for i in 0..MILLION as u64 {
            lp.after(Duration::from_nanos(MILLION as u64 - i), 1, count).unwrap();
        }
        assert_eq!(lp.timer_count(), MILLION);
        assert_eq!(lp.after(Duration::ZERO, 1, count), Err(linux_event::Error::Capacity));
        let mut fired = 0u64;
        while lp.timer_count() > 0 {
            lp.run_once(&mut fired, None).unwrap();
        }
        fired
    })
    .join()
    .unwrap();
    assert_eq!(fired, MILLION as u64);
}

#[test]
fn a_loop_in_a_static_is_made_once_and_runs() {
    static LOOP: StaticLoop<u32, 4, MILLION> = StaticLoop::new();
    let lp = LOOP.init(Epoll::new().unwrap()).unwrap();
    lp.after(Duration::ZERO, 0, |lp, n, _| {
        *n += 1;
        lp.stop();
    })
    .unwrap();
    let mut n = 0;
    lp.run(&mut n).unwrap();
    assert_eq!(n, 1);
    assert_eq!(LOOP.init(Epoll::new().unwrap()).err(), Some(linux_event::Error::Reentrant));
}

#[test]
fn a_loop_refuses_a_backend_smaller_than_its_watcher_table() {
    use linux_event::backend::{AnyBackend, BackendKind};
    // Linux AIO and io_uring are sized when made; a loop with room for more
    // watchers than that is refused when it is made, not at the 9th watch.
    for kind in [BackendKind::LinuxAio, BackendKind::IoUring] {
        match AnyBackend::with_capacity(kind, 8) {
            Ok(small) => {
                let mut room = Box::<Loop<(), 64, 4, AnyBackend>>::new_uninit();
                assert_eq!(Loop::init_in(&mut room, small).err(), Some(linux_event::Error::Capacity), "{kind}");
                let fits = AnyBackend::with_capacity(kind, 64).unwrap();
                assert!(Loop::<(), 64, 4, _>::with_backend(fits).is_ok(), "{kind}");
            }
            Err(e) => println!("NOTE: {kind} not offered by this kernel: {e}; not run here"),
        }
    }
}

#[test]
fn a_loop_made_in_place_is_dropped_in_place_with_its_handle() {
    let mut room = Box::<Loop<(), 4, 4>>::new_uninit();
    let waker = {
        let mut lp = Loop::init_in(&mut room, Epoll::new().unwrap()).unwrap();
        let waker = lp.waker().unwrap();
        assert_eq!(waker.signal(1), Ok(()));
        waker
    };
    // The loop was dropped with its handle: its doorbell is gone.
    assert_eq!(waker.signal(1), Err(linux_event::Error::Closed));
    // The room can be used again.
    let lp = Loop::init_in(&mut room, Epoll::new().unwrap()).unwrap();
    assert_eq!(lp.timer_count(), 0);
}
