//! The same server as Tokio tasks.
//!
//! Tokio runs the loop of [`crate::by_hand`] for us: its reactor waits on
//! epoll, keeps the table of what waits for which socket, and the timers.
//! Each client is a *task*: code written as if it blocked (`.await` where
//! lesson 3's thread would wait), which Tokio turns into a state machine
//! like our `Connection`, resumed when its socket is ready. So this reads
//! like lesson 3's `converse`, and runs like the event loop: on as many
//! threads as there are loops (`--loops`), so that the two engines are
//! compared fairly; with one, on the main thread (Tokio's `current_thread`
//! runtime).

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use common::{ClientLines, count, describe, say};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Sleep, sleep, timeout_at};

use crate::protocol::{
    BUSY_REPLY, BYE_REPLY, Ending, OVER_BUDGET_REPLY, PartialLines, PartialShare, ShutdownTally,
    answer, log_busy,
};
use crate::{ACCEPT_PAUSE, BUFFER_KEEP, Config, LINGER, READ_CHUNK, READS_PER_TURN};

// ANCHOR: limits
/// How long one reply may wait for the client to make room for it (lesson
/// 3's `WRITE_TIMEOUT`). A task awaits its write before it reads again, so
/// a client that does not read stops being read too, and holds at most one
/// read's replies; past this, it is disconnected.
pub const WRITE_TIMEOUT: Duration = multi_client::WRITE_TIMEOUT;
/// After the grace period, the most we wait for the tasks to close the
/// connections whose time ran out. Each task stops at the grace period's
/// end by itself, and counts itself as cut off; on more than one thread it
/// may do so a moment after the shutdown's own timer fires, and the summary
/// waits for that.
pub const LAST_CLOSES: Duration = Duration::from_secs(1);
// ANCHOR_END: limits

/// What the connection tasks count for the shutdown's summary line: the
/// fields of [`ShutdownTally`], added to by many tasks.
#[derive(Default)]
struct AtomicTally {
    told: AtomicUsize,
    answered: AtomicUsize,
    cut_off: AtomicUsize,
}

/// The two signals that stop the server, waited for as one.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("could not catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("could not catch SIGTERM")?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

// ANCHOR: serve
/// Serves clients until SIGINT or SIGTERM, then shuts down gracefully. A
/// second signal is an error: the server exits at once.
pub fn serve(listener: std::net::TcpListener, config: &Config) -> anyhow::Result<()> {
    listener
        .set_nonblocking(true)
        .context("could not make the listener non-blocking")?;
    // One loop: every task on this thread. More: Tokio's scheduler runs
    // the tasks on that many worker threads, and moves them between
    // threads to keep every one busy (the chapter's "One loop per core").
    let mut builder = if config.loops <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(config.loops);
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("could not start the Tokio runtime")?;
    // When this returns, the runtime is dropped with every task still in
    // it: the clients still connected after the grace period are closed.
    runtime.block_on(accept_until_signal(listener, config.clone()))
}
// ANCHOR_END: serve

// ANCHOR: accept_until_signal
async fn accept_until_signal(
    listener: std::net::TcpListener,
    config: Config,
) -> anyhow::Result<()> {
    let listener = TcpListener::from_std(listener).context("could not register the listener")?;
    let mut signals = StopSignals::new()?;
    // Tokio watches for signals now: one held since before `listening on`
    // (lib.rs, run) arrives, on this thread (the workers started with the
    // signals held, and keep them so).
    common::release_stop_signals();
    // One permit per client: a task holds its permit until it ends.
    let slots = Arc::new(Semaphore::new(config.max_clients));
    // The shutdown, sent to every task at once: when the grace period ends.
    let (stop, stopping) = watch::channel(None::<Instant>);
    let tally = Arc::new(AtomicTally::default());
    // The budget for partial lines: each task holds a share of it.
    let partial_lines = PartialLines::new(config.partial_lines_budget);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    // exercise 6.5: begin
                    match Arc::clone(&slots).try_acquire_owned() {
                        Ok(slot) => {
                            let task = connection(stream, client, slot, partial_lines.share(), config.idle_timeout, stopping.clone(), Arc::clone(&tally));
                            tokio::spawn(task);
                        }
                        Err(_) => {
                            log_busy(client, config.max_clients);
                            if let Ok(stream) = stream.into_std() {
                                common::refuse(stream, BUSY_REPLY);
                            }
                        }
                    }
                    // exercise 6.5: end
                }
                Err(err) => {
                    // Out of file descriptors, most often: pause instead of
                    // failing again at once, in a loop.
                    say!("could not accept a connection: {}; pausing", describe(&err));
                    sleep(ACCEPT_PAUSE).await;
                }
            },
            () = signals.recv() => break,
        }
    }
    // The first signal: close the listener (new connections are refused).
    drop(listener);
    shut_down(&config, &slots, &stop, &tally, &mut signals).await
}
// ANCHOR_END: accept_until_signal

// ANCHOR: shutdown
/// Tells every task the server is stopping, and waits until all the permits
/// are back or the grace period is over. A second signal ends it at once.
async fn shut_down(
    config: &Config,
    slots: &Semaphore,
    stop: &watch::Sender<Option<Instant>>,
    tally: &AtomicTally,
    signals: &mut StopSignals,
) -> anyhow::Result<()> {
    let connected = config.max_clients - slots.available_permits();
    say!(
        "shutting down: telling {} bye, waiting at most {} s",
        count(connected as u64, "client"),
        config.grace.as_secs()
    );
    let grace_end = Instant::now() + config.grace;
    let _ = stop.send(Some(grace_end));
    let every_slot = u32::try_from(config.max_clients).unwrap_or(u32::MAX);
    // Every task ends by grace_end: the slots all come back then at the
    // latest, those of clients cut off counted in the tally.
    tokio::select! {
        _ = slots.acquire_many(every_slot) => {}
        _ = tokio::time::sleep_until((grace_end + LAST_CLOSES).into()) => {}
        () = signals.recv() => return Err(second_signal(config, slots)),
    }
    let summary = ShutdownTally {
        told: tally.told.load(Ordering::SeqCst),
        answered: tally.answered.load(Ordering::SeqCst),
        // And any task still not done: the runtime's end closes it.
        cut_off: tally.cut_off.load(Ordering::SeqCst) + config.max_clients
            - slots.available_permits(),
    };
    say!("{}", summary.summary());
    Ok(())
}

fn second_signal(config: &Config, slots: &Semaphore) -> anyhow::Error {
    let connected = config.max_clients - slots.available_permits();
    anyhow!(
        "a second signal: stopped at once, with {} still connected",
        count(connected as u64, "client")
    )
}
// ANCHOR_END: shutdown

// ANCHOR: connection
/// One client's task: lesson 3's `serve_client`, with `.await`.
async fn connection(
    mut stream: TcpStream,
    client: SocketAddr,
    _slot: OwnedSemaphorePermit,
    mut partial: PartialShare,
    idle_timeout: Option<Duration>,
    mut stopping: watch::Receiver<Option<Instant>>,
    tally: Arc<AtomicTally>,
) {
    say!("[{client}] connected");
    // How many of its lines have been logged: the log of one client is
    // bounded, and ends with a summary if some were left out.
    let mut log = ClientLines::new(client);
    let ending = converse(
        &mut stream,
        &mut log,
        &mut partial,
        idle_timeout,
        &mut stopping,
        &tally,
    )
    .await;
    log.finish();
    ending.log(client);
    // The slot is given back here, when `_slot` is dropped.
}
// ANCHOR_END: connection

// ANCHOR: converse
/// Reads, answers, writes, until the client leaves, falls silent, or the
/// server stops.
async fn converse(
    stream: &mut TcpStream,
    log: &mut ClientLines,
    partial: &mut PartialShare,
    idle_timeout: Option<Duration>,
    stopping: &mut watch::Receiver<Option<Instant>>,
    tally: &AtomicTally,
) -> Ending {
    let mut input = Vec::new();
    let mut output = Vec::new();
    // One timer for the idle timeout, moved later whenever the client
    // speaks (a new one for every wait would be a timer added and removed
    // per line).
    let silence = sleep(idle_timeout.unwrap_or(Duration::MAX / 4));
    tokio::pin!(silence);
    {
        // One wait for the shutdown for the whole conversation, too: a new
        // `changed()` per line would join and leave the channel's list of
        // waiters each time, a lock that every thread's tasks share.
        let stop = stopping.changed();
        tokio::pin!(stop);
        loop {
            // Wait until the socket has bytes for us, without a buffer:
            // 10,000 waiting tasks hold 10,000 empty buffers, not 10,000
            // full ones.
            tokio::select! {
                ready = stream.readable() => {
                    if let Err(err) = ready {
                        return Ending::Failed(err);
                    }
                }
                () = &mut silence, if idle_timeout.is_some() => {
                    return Ending::Idle(idle_timeout.unwrap_or_default());
                }
                _ = &mut stop => break,
            }
            let timer = silence.as_mut();
            if let Some(ending) = receive(
                stream,
                log,
                partial,
                &mut input,
                &mut output,
                idle_timeout,
                timer,
            )
            .await
            {
                return ending;
            }
        }
    }
    // The server is stopping.
    let grace_end = stopping.borrow().unwrap_or_else(Instant::now);
    say_bye(stream, log, input, output, grace_end, tally).await
}
// ANCHOR_END: converse

// ANCHOR: receive
/// Reads until the kernel has nothing more (then Tokio knows to wait for
/// the next bytes), answering each read's lines as they come, and moves the
/// idle timer (`silence`) later at each read. Returns how the connection
/// ended, if it did.
async fn receive(
    stream: &mut TcpStream,
    log: &mut ClientLines,
    partial: &mut PartialShare,
    input: &mut Vec<u8>,
    output: &mut Vec<u8>,
    idle_timeout: Option<Duration>,
    mut silence: Pin<&mut Sleep>,
) -> Option<Ending> {
    for _ in 0..READS_PER_TURN {
        let ended = match read_now(stream, input) {
            Ok(0) => true,
            Ok(_) => false,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return None,
            Err(err) => return Some(Ending::Failed(err)),
        };
        if let Some(limit) = idle_timeout {
            silence.as_mut().reset((Instant::now() + limit).into());
        }
        let answered = answer(input, ended, log, output);
        if answered.too_long {
            let until = Instant::now() + LINGER;
            let _ = timeout_at(until.into(), stream.write_all(output)).await;
            close_gently(stream, until).await;
            return Some(Ending::TooLong);
        }
        // What is left in `input` is a partial line: it must fit in what
        // is left of the budget for all of them, or the client is refused
        // (after the replies already due), as for a line over LINE_LIMIT.
        if !partial.hold(input.len()) {
            let needed = input.len();
            *input = Vec::new();
            partial.hold(0);
            output.extend_from_slice(OVER_BUDGET_REPLY);
            let until = Instant::now() + LINGER;
            let _ = timeout_at(until.into(), stream.write_all(output)).await;
            close_gently(stream, until).await;
            return Some(Ending::OverBudget(needed));
        }
        if let Err(ending) = send(stream, output).await {
            return Some(ending);
        }
        if ended {
            return Some(Ending::Finished);
        }
    }
    None
}
// ANCHOR_END: receive

// ANCHOR: io
/// Reads what has arrived, without waiting, into `input`. The read buffer
/// is on the thread's stack for the length of this call only, not in the
/// task (whatever a task holds across an `.await` is kept for every client).
fn read_now(stream: &TcpStream, input: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut chunk)?;
    input.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Sends all the waiting replies. The task waits here while the client is
/// not reading; it does not read meanwhile, so the client's lines wait in
/// the kernel instead of its replies in our memory.
async fn send(stream: &mut TcpStream, output: &mut Vec<u8>) -> Result<(), Ending> {
    if output.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(output)).await {
        Ok(Ok(())) => {
            output.clear();
            output.shrink_to(BUFFER_KEEP);
            Ok(())
        }
        Ok(Err(err)) => Err(Ending::Failed(err)),
        Err(_) => Err(Ending::NotReading(output.len())),
    }
}

/// Lesson 3's `common::close_gently`, as a task: FIN after the last reply,
/// then read and discard until the client closes too, or `until`. Returns
/// whether the client was gone before `until`.
async fn close_gently(stream: &mut TcpStream, until: Instant) -> bool {
    let _ = stream.shutdown().await;
    let mut discard = [0u8; 1024];
    loop {
        match timeout_at(until.into(), stream.read(&mut discard)).await {
            Ok(Ok(1..)) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}
// ANCHOR_END: io

// ANCHOR: bye
/// The server is stopping: answer the lines that have already arrived,
/// then `bye`, then a gentle close, all by `grace_end`.
async fn say_bye(
    stream: &mut TcpStream,
    log: &mut ClientLines,
    mut input: Vec<u8>,
    mut output: Vec<u8>,
    grace_end: Instant,
    tally: &AtomicTally,
) -> Ending {
    for _ in 0..READS_PER_TURN {
        let ended = match read_now(stream, &mut input) {
            Ok(0) => true,
            Ok(_) => false,
            Err(_) => break, // WouldBlock: nothing more has arrived
        };
        let answered = answer(&mut input, ended, log, &mut output);
        tally.answered.fetch_add(answered.lines, Ordering::SeqCst);
        if ended || answered.too_long {
            break;
        }
    }
    output.extend_from_slice(BYE_REPLY);
    tally.told.fetch_add(1, Ordering::SeqCst);
    // Still connected when the grace period ends: cut off.
    match timeout_at(grace_end.into(), stream.write_all(&output)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Ending::Failed(err),
        Err(_) => {
            tally.cut_off.fetch_add(1, Ordering::SeqCst);
            return Ending::ToldBye;
        }
    }
    if !close_gently(stream, grace_end).await {
        tally.cut_off.fetch_add(1, Ordering::SeqCst);
    }
    Ending::ToldBye
}
// ANCHOR_END: bye
