//! The vendored glommio's eighth, ninth and twelfth changes (vendor/glommio/TESSERA-PATCH.md),
//! which take clock reads and system calls out of an executor turn:
//! - a task queue's time slice ends by a deadline that `need_preempt` compares a clock
//!   against, not by a timer on the latency ring: preemption must still happen;
//! - an I/O source's queued, submitted and fulfilled times are read from the clock only when
//!   someone collects its latency (`record_io_latencies`): those latencies must still come;
//! - a parking executor's timer is the timeout of its wait: it must still wake for it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{Latency, LocalExecutorBuilder, Shares, executor};

/// A busy task in one queue and a one-step task in another: the busy one yields only when
/// `yield_if_needed` finds its slice over, so the other runs only if preemption works.
/// (`yield_if_needed` yields only when `need_preempt` says so.) Bounded: the busy task
/// gives up after 20 s (a slice is 10 ms here).
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
                    while !flag.get() && start.elapsed() < Duration::from_secs(20) {
                        glommio::yield_if_needed().await;
                    }
                    flag.get()
                },
                busy_q,
            )
            .unwrap();
            let ran = busy.await;
            assert!(
                ran,
                "the other task queue never ran: the busy one was not preempted"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

/// With `record_io_latencies`, a file read's time in the ring is still measured (the clock
/// is read for sources that collect latencies, and only for them).
#[test]
fn io_latencies_are_still_recorded_when_asked_for() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("glommio-latency");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("file");
    std::fs::write(&path, [7u8; 4096]).unwrap();
    LocalExecutorBuilder::default()
        .record_io_latencies(true)
        .spawn(move || async move {
            let file = glommio::io::BufferedFile::open(&path).await.unwrap();
            let read = file.read_at(0, 4096).await.unwrap();
            assert!(read.len() == 4096 && read.iter().all(|&b| b == 7));
            file.close().await.unwrap();
            let stats = executor().io_stats().all_rings();
            assert!(
                stats.io_latency_us().count() > 0,
                "no I/O latency recorded with record_io_latencies"
            );
        })
        .unwrap()
        .join()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An executor with nothing to do but a timer parks until the timer, in one wait that
/// carries the timeout (glommio's twelfth change, on 5.11+ kernels): it must wake for the
/// timer (not sleep on), and must sleep (not spin: a wait that returned at once would run
/// the scheduler loop thousands of times). Bounded: 20 s for a 200 ms timer.
#[test]
fn an_idle_executor_sleeps_until_its_timer() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runs = LocalExecutorBuilder::default()
            .spawn(|| async {
                let before = executor().executor_stats().scheduler_runs();
                let start = Instant::now();
                glommio::timer::sleep(Duration::from_millis(200)).await;
                assert!(
                    start.elapsed() >= Duration::from_millis(200),
                    "the timer fired early"
                );
                executor().executor_stats().scheduler_runs() - before
            })
            .unwrap()
            .join()
            .unwrap();
        tx.send(runs).unwrap();
    });
    let runs = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the executor never woke for its timer");
    assert!(
        runs < 50,
        "{runs} scheduler runs for one timer: the executor spun instead of sleeping"
    );
}
