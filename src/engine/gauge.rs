//! Does the task model's server answer requests side by side, or one after another?
//!
//! Planning ahead (`pipeline_lag` > 1) pays off only when the server has room for the extra
//! requests: a hosted API or vLLM answers dozens at once, but llama.cpp's `llama-server` and
//! Ollama often have one or two slots, and there every request planned ahead waits in the
//! server's queue in front of the one the next step needs. So the engine watches each batch of
//! evaluations it sends together (the seed's val pass, a minibatch) and runs proposals one at a
//! time while the server is seen answering them in turn.
//!
//! The measure, per batch of at least three requests that reached the server: each request's
//! speed, `(output tokens + OVERHEAD_TOKENS) / seconds`, from the moment it was sent. Served side
//! by side, every request goes at about the same speed whatever its length, so the median speed
//! is close to the fastest. Served in turn, the k-th waits for the k - 1 before it, so the
//! speeds fall off as 1, 1/2, 1/3, …: the median is half the fastest or less. The tokens make a
//! long reply on a parallel server read as fast (it is just long), and the overhead term keeps a
//! server whose time does not depend on length (a mock, a cache in front) from reading as
//! serial. Replies faster than `REPLAYED_SECS` are taken as served from the response cache and
//! left out. The verdict comes from an average over batches.
//!
//! No single cold batch decides the run's speed:
//! - **Cold batches are left out.** A batch that opened new connections (the first of the
//!   process, or one with more requests in flight than ever before: the connection pool cannot
//!   hold more connections than that) times the network path, not the server's slots: a listen
//!   backlog dropping SYNs (Python's `http.server` keeps 5, and a dropped SYN costs a 1 s
//!   retransmit), TCP and TLS handshakes, a proxy warming up. Such delays fall on some requests
//!   and not others, which is exactly what a queue looks like; so these batches say nothing.
//! - **The verdict keeps being measured and can go back.** Served in turn, a batch of three
//!   sent together still queues within itself at one proposal at a time (the 2nd waits for the
//!   1st), so a one-slot server keeps reading serial; a parallel server misread once reads
//!   parallel on the next warm batches, and the average climbs back over `PARALLEL_ABOVE` (a
//!   margin over `SERIAL_BELOW`, so that one batch near the line does not flip it).
//! - **Until a warm batch is measured** (`Unknown`) the run goes one proposal at a time, after
//!   the first proposal that runs beside the seed's val pass: on a server answering in turn that
//!   is the sequential loop, on a parallel one it lasts until the first proposal's child test (a
//!   warm batch of three) comes back, one latency or so.
//!
//! The lag changes speed and spend, never the result (every committed plan is the sequential
//! loop's), so this measurement of timing never makes a run's outcome depend on timing.

/// Tokens' worth of time a reply costs before its first token (time to first token, network).
pub const OVERHEAD_TOKENS: f64 = 20.0;
/// A reply this fast came from the response cache, not the server.
pub const REPLAYED_SECS: f64 = 0.010;
/// Below this averaged ratio of median to fastest speed the server is taken to answer in turn.
const SERIAL_BELOW: f64 = 0.55;
/// Above this averaged ratio a server taken to answer in turn is taken to answer side by side
/// again (served in turn, a batch reads 0.5 or less).
const PARALLEL_ABOVE: f64 = 0.8;
/// Weight of the newest batch in the average.
const WEIGHT: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Not measured yet.
    Unknown,
    /// Requests are answered side by side: plan ahead.
    Parallel,
    /// Requests are answered one after another: one proposal at a time.
    Serial,
}

#[derive(Debug, Clone)]
pub struct ParallelGauge {
    average: Option<f64>,
    verdict: Verdict,
    batches: u64,
}

impl Default for ParallelGauge {
    fn default() -> Self {
        ParallelGauge { average: None, verdict: Verdict::Unknown, batches: 0 }
    }
}

/// The median speed over the fastest for one batch, or None when fewer than three of its
/// requests reached the server. `replies`: (seconds from sending, output tokens).
pub fn batch_ratio(replies: &[(f64, u64)]) -> Option<f64> {
    let mut speeds: Vec<f64> = replies
        .iter()
        .filter(|(secs, _)| *secs >= REPLAYED_SECS)
        .map(|&(secs, tokens)| (tokens as f64 + OVERHEAD_TOKENS) / secs)
        .collect();
    if speeds.len() < 3 {
        return None;
    }
    speeds.sort_by(|a, b| b.total_cmp(a));
    let fastest = speeds[0];
    // The lower median: with three requests served in turn it is exactly half the fastest.
    let median = speeds[speeds.len() / 2];
    Some(median / fastest)
}

impl ParallelGauge {
    /// Takes one batch into account; returns the verdict when it changed. A `cold` batch (one
    /// that opened new connections) is left out.
    pub fn observe(&mut self, replies: &[(f64, u64)], cold: bool) -> Option<Verdict> {
        if cold {
            return None;
        }
        let ratio = batch_ratio(replies)?;
        let average = match self.average {
            None => ratio,
            Some(a) => a + WEIGHT * (ratio - a),
        };
        self.average = Some(average);
        self.batches += 1;
        let next = match self.verdict {
            Verdict::Serial if average > PARALLEL_ABOVE => Verdict::Parallel,
            Verdict::Serial => Verdict::Serial,
            _ if average < SERIAL_BELOW => Verdict::Serial,
            _ => Verdict::Parallel,
        };
        let changed = next != self.verdict;
        self.verdict = next;
        changed.then_some(next)
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub fn average(&self) -> Option<f64> {
        self.average
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completion times of requests sent together to a server with `slots` slots, FIFO, each
    /// taking `secs_per_token * tokens + ttft` of a slot.
    fn served(tokens: &[u64], slots: usize, secs_per_token: f64, ttft: f64) -> Vec<(f64, u64)> {
        let mut free = vec![0.0f64; slots];
        tokens
            .iter()
            .map(|&t| {
                let (i, start) = free.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).expect("a slot");
                let done = start + ttft + secs_per_token * t as f64;
                free[i] = done;
                (done, t)
            })
            .collect()
    }

    #[test]
    fn a_server_answering_in_turn_reads_as_serial() {
        // One slot, equal replies: speeds 1, 1/2, 1/3.
        let r = batch_ratio(&served(&[100, 100, 100], 1, 0.02, 0.3)).unwrap();
        assert!(r <= 0.5 + 1e-9, "{r}");
        // The long reply first, so the latencies look flat (6 s, 7 s, 8 s): still serial.
        let r = batch_ratio(&served(&[300, 50, 50], 1, 0.02, 0.0)).unwrap();
        assert!(r < 0.3, "{r}");
        // A val pass of twelve on two slots.
        let r = batch_ratio(&served(&[80; 12], 2, 0.02, 0.3)).unwrap();
        assert!(r < 0.4, "{r}");
    }

    #[test]
    fn a_server_answering_side_by_side_reads_as_parallel() {
        // A hosted API: replies of very different lengths, each at its own pace.
        let r = batch_ratio(&served(&[50, 100, 300], 32, 0.02, 0.5)).unwrap();
        assert!(r > 0.8, "{r}");
        // A mock that takes 100 ms whatever it says (short replies of different lengths).
        let mock: Vec<(f64, u64)> = [5, 12, 20, 8, 3].iter().map(|&t| (0.1, t)).collect();
        assert!(batch_ratio(&mock).unwrap() >= 0.6);
        // Twelve on a server with room for all of them.
        assert!(batch_ratio(&served(&[80; 12], 16, 0.02, 0.3)).unwrap() > 0.9);
    }

    #[test]
    fn replies_from_the_cache_and_small_batches_say_nothing() {
        assert_eq!(batch_ratio(&[(0.0005, 10), (0.001, 12), (0.2, 30), (0.3, 30)]), None);
        assert_eq!(batch_ratio(&[(1.0, 10), (2.0, 12)]), None);
        let mut g = ParallelGauge::default();
        assert_eq!(g.observe(&[(0.0, 1), (0.0, 1), (0.0, 1)], false), None);
        assert_eq!(g.verdict(), Verdict::Unknown);
    }

    /// Twenty requests sent at once to a parallel server at 100 ms a call, fourteen of whose
    /// connections waited for a SYN retransmit (1 s, some 3 s): as a batch it reads like a queue.
    fn cold_burst() -> Vec<(f64, u64)> {
        (0..20)
            .map(|i| {
                (
                    if i < 6 {
                        0.1
                    } else if i < 16 {
                        1.1
                    } else {
                        3.1
                    },
                    10,
                )
            })
            .collect()
    }

    #[test]
    fn a_cold_burst_reads_like_a_queue_and_is_left_out() {
        assert!(batch_ratio(&cold_burst()).unwrap() < SERIAL_BELOW);
        let mut g = ParallelGauge::default();
        assert_eq!(g.observe(&cold_burst(), true), None);
        assert_eq!(g.verdict(), Verdict::Unknown);
        // The warm minibatches after it read as what they are.
        assert_eq!(g.observe(&served(&[10, 12, 8], 32, 0.0, 0.1), false), Some(Verdict::Parallel));
    }

    #[test]
    fn a_serial_verdict_goes_back_when_warm_batches_disagree() {
        let mut g = ParallelGauge::default();
        // Misread once (a cold batch not caught as cold).
        assert_eq!(g.observe(&cold_burst(), false), Some(Verdict::Serial));
        let parallel = served(&[80; 3], 8, 0.02, 0.3);
        let mut back = None;
        for k in 1..=10 {
            if g.observe(&parallel, false) == Some(Verdict::Parallel) {
                back = Some(k);
                break;
            }
        }
        let k = back.expect("never went back to planning ahead");
        assert!(k >= 2, "one batch flipped it back");
    }

    #[test]
    fn a_one_slot_server_keeps_reading_serial_one_proposal_at_a_time() {
        // At one proposal at a time a minibatch of three still queues within itself.
        let mut g = ParallelGauge::default();
        assert_eq!(g.observe(&served(&[80; 12], 1, 0.02, 0.3), false), Some(Verdict::Serial));
        for lengths in [[80, 80, 80], [20, 120, 60], [150, 10, 40], [5, 5, 200]] {
            g.observe(&served(&lengths, 1, 0.02, 0.3), false);
            assert_eq!(g.verdict(), Verdict::Serial, "{lengths:?}: {:?}", g.average());
        }
    }

    #[test]
    fn parallel_batches_average_and_one_queued_batch_does_not_stop_planning_ahead() {
        let parallel = served(&[80; 3], 8, 0.02, 0.3);
        let mut g = ParallelGauge::default();
        assert_eq!(g.observe(&parallel, false), Some(Verdict::Parallel));
        assert_eq!(g.observe(&served(&[80; 3], 1, 0.02, 0.3), false), None);
        assert_eq!(g.verdict(), Verdict::Parallel);
    }
}
