//! The vendored glommio's eighth change (vendor/glommio/TESSERA-PATCH.md): a task queue's
//! time slice ends by a deadline that `need_preempt` compares a clock against, not by a
//! timer on the latency ring. Preemption must still happen: a task that runs on, yielding
//! only when the executor says so, lets another task queue run once its slice is over.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{Latency, LocalExecutorBuilder, Shares, executor};

/// A busy task in one queue and a one-step task in another: the busy one yields only when
/// `yield_if_needed` finds its slice over, so the other runs only if preemption works.
/// Bounded: the busy task gives up after 20 s (a slice is 10 ms here).
#[test]
fn a_busy_task_queue_is_preempted_when_its_slice_ends() {
    LocalExecutorBuilder::default()
        .preempt_timer(Duration::from_millis(10))
        .spawn(|| async {
            let busy_q =
                executor().create_task_queue(Shares::default(), Latency::NotImportant, "busy");
            let other_q =
                executor().create_task_queue(Shares::default(), Latency::NotImportant, "other");
            let other_ran = Rc::new(Cell::new(false));
            let flag = other_ran.clone();
            let busy = glommio::spawn_local_into(
                async move {
                    // Spawned from here, so it cannot have run before the busy loop starts.
                    let mark = flag.clone();
                    glommio::spawn_local_into(async move { mark.set(true) }, other_q)
                        .unwrap()
                        .detach();
                    let start = Instant::now();
                    let mut yields = 0u32;
                    while !flag.get() && start.elapsed() < Duration::from_secs(20) {
                        if executor().need_preempt() {
                            yields += 1;
                        }
                        glommio::yield_if_needed().await;
                    }
                    (flag.get(), yields)
                },
                busy_q,
            )
            .unwrap();
            let (ran, yields) = busy.await;
            assert!(
                ran,
                "the other task queue never ran: the busy one was not preempted"
            );
            assert!(yields >= 1, "need_preempt never reported the slice's end");
        })
        .unwrap()
        .join()
        .unwrap();
}
